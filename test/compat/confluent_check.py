"""confluent-kafka (librdkafka) against a running Sluice broker.

Creates a topic per codec with the AdminClient, produces keyed records with
headers (idempotent, acks=all) under gzip, snappy, lz4 and zstd, reads them
back with an assigned consumer (no consumer group) and compares exactly.

Usage: /usr/bin/python3 confluent_check.py HOST:PORT

Env: SLUICE_COMPAT_REPLICATION_FACTOR (default 1) is the replication factor
of the topics it creates; SLUICE_COMPAT_MIN_INSYNC_REPLICAS, if set, is set
as their min.insync.replicas (run.sh's cluster pass: 3 and 2).
"""

import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

N = 200
PARTITIONS = 3
DEADLINE_S = 60

# Replication of the topics this check creates: run.sh's cluster pass sets
# 3 and 2; by default (one broker) 1 and the broker's min.insync.replicas.
REPLICATION_FACTOR = int(os.environ.get("SLUICE_COMPAT_REPLICATION_FACTOR") or 1)
MIN_INSYNC = os.environ.get("SLUICE_COMPAT_MIN_INSYNC_REPLICAS")
TOPIC_CONFIGS = {"min.insync.replicas": MIN_INSYNC} if MIN_INSYNC else {}
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def expected(codec):
    return [
        (
            f"confluent-{codec}-key-{i}".encode(),
            (f"value {i} " * (1 + i % 25)).encode(),
            [("seq", str(i).encode()), ("client", b"confluent-kafka")],
        )
        for i in range(N)
    ]


def create_topic(admin, topic):
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR,
                                          config=TOPIC_CONFIGS)], request_timeout=15)
    futures[topic].result(timeout=20)


def produce(bootstrap, topic, codec, want):
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{codec}: delivery failed: {err}")

    p = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "sluice-compat-confluent",
        "compression.codec": codec,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
    })
    for k, v, h in want:
        p.produce(topic, key=k, value=v, headers=h, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(30)
    if left:
        errors.append(f"{codec}: {left} records not delivered within 30 s")
    return errors


def consume(bootstrap, topic, n):
    # group.id is only used for commits, which this consumer never makes.
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "sluice-compat-confluent",
        "group.id": "sluice-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 200,
    })
    got, errors = [], []
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < n and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    errors.append(f"consume error: {msg.error()}")
                continue
            got.append(msg)
    finally:
        c.close()
    return got, errors


def check_codec(bootstrap, admin, codec):
    topic = f"compat-confluent-{codec}"
    create_topic(admin, topic)
    want = expected(codec)
    errs = produce(bootstrap, topic, codec, want)
    got, cerrs = consume(bootstrap, topic, len(want))
    errs.extend(f"{codec}: {e}" for e in cerrs[:5])
    if len(got) != len(want):
        errs.append(f"{codec}: read {len(got)} records, produced {len(want)}")
    by_key = {k: (v, h) for k, v, h in want}
    seen = set()
    next_offset = {}
    for m in got:
        k = m.key()
        if k not in by_key:
            errs.append(f"{codec}: unexpected key {k!r}")
            continue
        if k in seen:
            errs.append(f"{codec}: key {k!r} read twice")
        seen.add(k)
        v, h = by_key[k]
        if m.value() != v:
            errs.append(f"{codec}: key {k!r}: value differs")
        if list(m.headers() or []) != h:
            errs.append(f"{codec}: key {k!r}: headers {m.headers()!r}")
        if m.offset() != next_offset.get(m.partition(), 0):
            errs.append(f"{codec}: partition {m.partition()} offset {m.offset()} not dense")
        next_offset[m.partition()] = m.offset() + 1
    return errs


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "sluice-compat-confluent"})
    errs = []
    for codec in CODECS:
        try:
            errs.extend(check_codec(bootstrap, admin, codec))
        except Exception as e:  # report every codec, not just the first failure
            errs.append(f"{codec}: {type(e).__name__}: {e}")
    for e in errs[:20]:
        print(e, file=sys.stderr)
    if errs:
        return 1
    print(f"confluent-kafka {sys.modules['confluent_kafka'].version()[0]}: codecs {','.join(CODECS)} x {N} records round-tripped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
