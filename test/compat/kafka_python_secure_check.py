"""kafka-python against a secured Sluice broker: keyed records produced and
read back over SASL_SSL with SCRAM-SHA-512 (kafka-python sends SaslHandshake
and its tokens its own way), then over SSL with a client certificate.

Usage: /usr/bin/python3 kafka_python_secure_check.py SASL_SSL_HOST:PORT
Env: as kcat_secure_check.sh.
"""

import os
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

N = 100


def main():
    env = os.environ
    modes = {
        "sasl": dict(bootstrap_servers=sys.argv[1], security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                     sasl_plain_username=env["SLUICE_COMPAT_USER"], sasl_plain_password=env["SLUICE_COMPAT_PASSWORD"],
                     ssl_cafile=env["SLUICE_COMPAT_CA"]),
        "mtls": dict(bootstrap_servers=env["SLUICE_COMPAT_MTLS_BOOTSTRAP"], security_protocol="SSL",
                     ssl_cafile=env["SLUICE_COMPAT_CA"], ssl_certfile=env["SLUICE_COMPAT_CERT"],
                     ssl_keyfile=env["SLUICE_COMPAT_KEY"]),
    }
    failed = False
    for mode, common in modes.items():
        topic = f"compat-secure-kafka-python-{mode}"
        want = {f"kp-{mode}-{i}".encode(): f"value {i}".encode() for i in range(N)}
        producer = KafkaProducer(acks="all", **common)
        for k, v in want.items():
            producer.send(topic, key=k, value=v)
        producer.flush(timeout=60)
        producer.close()
        consumer = KafkaConsumer(consumer_timeout_ms=10000, **common)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = {}
        for record in consumer:
            got[record.key] = record.value
            if len(got) == N:
                break
        consumer.close()
        if got != want:
            print(f"kafka-python {mode}: got {len(got)} of {N} records", file=sys.stderr)
            failed = True
    if failed:
        sys.exit(1)
    print(f"kafka-python: SASL_SSL SCRAM-SHA-512 and mTLS x {N} records round-tripped")


if __name__ == "__main__":
    main()
