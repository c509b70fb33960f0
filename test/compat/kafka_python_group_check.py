"""kafka-python consumer groups against a running Sluice broker.

Creates a topic, produces records, reads them with a KafkaConsumer in a
consumer group (group_id=...), commits, and checks the committed offsets;
then produces more and checks that a second consumer of the same group
reads exactly the new records (nothing the commit covered).

Usage: /usr/bin/python3 kafka_python_group_check.py HOST:PORT

Env: SLUICE_COMPAT_REPLICATION_FACTOR (default 1) is the replication factor
of the topics it creates; SLUICE_COMPAT_MIN_INSYNC_REPLICAS, if set, is set
as their min.insync.replicas (run.sh's cluster pass: 3 and 2).
"""

import os
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

TOPIC = "compat-kafka-python-group"
GROUP = "compat-kafka-python-g"
PARTITIONS = 3
DEADLINE_S = 60

# Replication of the topics this check creates: run.sh's cluster pass sets
# 3 and 2; by default (one broker) 1 and the broker's min.insync.replicas.
REPLICATION_FACTOR = int(os.environ.get("SLUICE_COMPAT_REPLICATION_FACTOR") or 1)
MIN_INSYNC = os.environ.get("SLUICE_COMPAT_MIN_INSYNC_REPLICAS")
TOPIC_CONFIGS = {"min.insync.replicas": MIN_INSYNC} if MIN_INSYNC else {}


def produce(bootstrap, prefix, n):
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="sluice-compat-kafka-python", acks="all",
                             linger_ms=5, request_timeout_ms=15000)
    try:
        values = [f"{prefix}-{i}".encode() for i in range(n)]
        futures = [producer.send(TOPIC, key=f"k{i}".encode(), value=v) for i, v in enumerate(values)]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
        return values
    finally:
        producer.close(timeout=10)


def consume(bootstrap, want):
    """Reads len(want) records in the group, commits, and returns
    (records, errors). Waits a moment past the last record for extras."""
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        client_id="sluice-compat-kafka-python",
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=200,
        request_timeout_ms=15000,
    )
    got, errs = [], []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(want) and time.monotonic() < deadline:
            for _, records in consumer.poll(timeout_ms=500).items():
                got.extend(records)
        if len(got) < len(want):
            errs.append(f"read {len(got)} of {len(want)} records within {DEADLINE_S}s (assignment {consumer.assignment()})")
            return got, errs
        # Anything more now is a record read twice.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            for _, records in consumer.poll(timeout_ms=300).items():
                got.extend(records)
        consumer.commit()
        ends = consumer.end_offsets([TopicPartition(TOPIC, p) for p in range(PARTITIONS)])
        for tp, end_offset in ends.items():
            committed = consumer.committed(tp)
            if committed != end_offset:
                errs.append(f"partition {tp.partition}: committed {committed}, end offset {end_offset}")
    finally:
        consumer.close()
    return got, errs


def compare(run, want, got):
    errs = []
    values = [r.value for r in got]
    if sorted(values) != sorted(want):
        old = [v for v in values if v not in want]
        missing = set(want) - set(values)
        errs.append(f"run {run}: read {len(values)} records, want {len(want)}; "
                    f"{len(old)} not expected (e.g. {old[:3]}), {len(missing)} missing")
    return errs


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = sys.argv[1]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluice-compat-kafka-python", request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(name=TOPIC, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR,
                                      topic_configs=TOPIC_CONFIGS)], timeout_ms=15000)
    finally:
        admin.close()

    errs = []
    first = produce(bootstrap, "first", 90)
    got, e = consume(bootstrap, first)
    errs += [f"run 1: {x}" for x in e] + compare(1, first, got)
    second = produce(bootstrap, "second", 30)
    got, e = consume(bootstrap, second)
    errs += [f"run 2: {x}" for x in e] + compare(2, second, got)
    for x in errs[:20]:
        print(x, file=sys.stderr)
    if errs:
        return 1
    print(f"kafka-python group: {len(first)} records consumed and committed, a second run resumed with exactly {len(second)} new")
    return 0


if __name__ == "__main__":
    sys.exit(main())
