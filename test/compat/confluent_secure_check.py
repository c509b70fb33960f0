"""confluent-kafka (librdkafka) against a secured Sluice broker: keyed
records produced and read back in a consumer group over SASL_SSL with
SCRAM-SHA-512, then over SSL with a client certificate.

Usage: /usr/bin/python3 confluent_secure_check.py SASL_SSL_HOST:PORT
Env: as kcat_secure_check.sh.
"""

import os
import sys
import time

from confluent_kafka import Consumer, Producer, version

N = 100


def main():
    env = os.environ
    modes = {
        "sasl": {"bootstrap.servers": sys.argv[1], "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
                 "sasl.username": env["SLUICE_COMPAT_USER"], "sasl.password": env["SLUICE_COMPAT_PASSWORD"],
                 "ssl.ca.location": env["SLUICE_COMPAT_CA"]},
        "mtls": {"bootstrap.servers": env["SLUICE_COMPAT_MTLS_BOOTSTRAP"], "security.protocol": "SSL",
                 "ssl.ca.location": env["SLUICE_COMPAT_CA"], "ssl.certificate.location": env["SLUICE_COMPAT_CERT"],
                 "ssl.key.location": env["SLUICE_COMPAT_KEY"]},
    }
    failed = False
    for mode, common in modes.items():
        topic = f"compat-secure-confluent-{mode}"
        want = {f"ck-{mode}-{i}".encode(): f"value {i}".encode() for i in range(N)}
        producer = Producer(dict(common, acks="all"))
        for k, v in want.items():
            producer.produce(topic, key=k, value=v)
        if producer.flush(60) != 0:
            print(f"confluent-kafka {mode}: records left unsent", file=sys.stderr)
            failed = True
            continue
        consumer = Consumer(dict(common, **{"group.id": topic, "auto.offset.reset": "earliest"}))
        consumer.subscribe([topic])
        got = {}
        deadline = time.time() + 60
        while len(got) < N and time.time() < deadline:
            msg = consumer.poll(1)
            if msg is not None and msg.error() is None:
                got[msg.key()] = msg.value()
        consumer.close()
        if got != want:
            print(f"confluent-kafka {mode}: got {len(got)} of {N} records", file=sys.stderr)
            failed = True
    if failed:
        sys.exit(1)
    print(f"confluent-kafka {version()[0]}: SASL_SSL SCRAM-SHA-512 and mTLS x {N} records round-tripped")


if __name__ == "__main__":
    main()
