"""kafka-python against a running Sluice broker.

Creates a topic per codec with the admin client, produces keyed records
with headers under every codec kafka-python can use here, reads them back
with a group-less consumer (assign + seek) and compares exactly.

Usage: /usr/bin/python3 kafka_python_check.py HOST:PORT

Env: SLUICE_COMPAT_REPLICATION_FACTOR (default 1) is the replication factor
of the topics it creates; SLUICE_COMPAT_MIN_INSYNC_REPLICAS, if set, is set
as their min.insync.replicas (run.sh's cluster pass: 3 and 2).
"""

import os
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.codec import has_gzip, has_lz4, has_snappy, has_zstd

N = 200
PARTITIONS = 3
DEADLINE_S = 60

# Replication of the topics this check creates: run.sh's cluster pass sets
# 3 and 2; by default (one broker) 1 and the broker's min.insync.replicas.
REPLICATION_FACTOR = int(os.environ.get("SLUICE_COMPAT_REPLICATION_FACTOR") or 1)
MIN_INSYNC = os.environ.get("SLUICE_COMPAT_MIN_INSYNC_REPLICAS")
TOPIC_CONFIGS = {"min.insync.replicas": MIN_INSYNC} if MIN_INSYNC else {}


def expected(codec):
    return [
        (
            f"kafka-python-{codec}-key-{i}".encode(),
            (f"value {i} " * (1 + i % 25)).encode(),
            [("seq", str(i).encode()), ("client", b"kafka-python")],
        )
        for i in range(N)
    ]


def check_codec(bootstrap, admin, codec):
    topic = f"compat-kafka-python-{codec}"
    admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR,
                                 topic_configs=TOPIC_CONFIGS)], timeout_ms=15000)
    want = expected(codec)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="sluice-compat-kafka-python",
        compression_type=None if codec == "none" else codec,
        acks="all",
        linger_ms=5,
        request_timeout_ms=15000,
    )
    try:
        futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in want]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="sluice-compat-kafka-python",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
        request_timeout_ms=15000,
    )
    got = []
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(want) and time.monotonic() < deadline:
            for _, records in consumer.poll(timeout_ms=500).items():
                got.extend(records)
    finally:
        consumer.close()

    errs = []
    if len(got) != len(want):
        errs.append(f"{codec}: read {len(got)} records, produced {len(want)}")
    by_key = {k: (v, h) for k, v, h in want}
    seen = set()
    next_offset = {}
    for r in got:
        if r.key not in by_key:
            errs.append(f"{codec}: unexpected key {r.key!r}")
            continue
        if r.key in seen:
            errs.append(f"{codec}: key {r.key!r} read twice")
        seen.add(r.key)
        v, h = by_key[r.key]
        if r.value != v:
            errs.append(f"{codec}: key {r.key!r}: value differs")
        if list(r.headers) != h:
            errs.append(f"{codec}: key {r.key!r}: headers {r.headers!r}")
        if r.offset != next_offset.get(r.partition, 0):
            errs.append(f"{codec}: partition {r.partition} offset {r.offset} not dense")
        next_offset[r.partition] = r.offset + 1
    return errs


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = sys.argv[1]
    available = {"none": True, "gzip": has_gzip(), "snappy": has_snappy(), "lz4": has_lz4(), "zstd": has_zstd()}
    codecs = [c for c, ok in available.items() if ok]
    if "gzip" not in codecs:
        print("kafka-python: gzip unavailable", file=sys.stderr)
        return 1
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluice-compat-kafka-python", request_timeout_ms=15000)
    errs = []
    try:
        for codec in codecs:
            errs.extend(check_codec(bootstrap, admin, codec))
    finally:
        admin.close()
    for e in errs[:20]:
        print(e, file=sys.stderr)
    if errs:
        return 1
    missing = [c for c, ok in available.items() if not ok]
    print(f"kafka-python: codecs {','.join(codecs)} x {N} records round-tripped" + (f" (not installed: {','.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
