"""confluent-kafka (librdkafka) consumer groups against a running Sluice broker.

Creates a topic, produces records, reads them with a subscribed Consumer
(group.id), commits synchronously and checks the committed offsets; then
produces more and checks that a second consumer of the same group reads
exactly the new records.

Usage: /usr/bin/python3 confluent_group_check.py HOST:PORT

Env: SLUICE_COMPAT_REPLICATION_FACTOR (default 1) is the replication factor
of the topics it creates; SLUICE_COMPAT_MIN_INSYNC_REPLICAS, if set, is set
as their min.insync.replicas (run.sh's cluster pass: 3 and 2).
"""

import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "compat-confluent-group"
GROUP = "compat-confluent-g"
PARTITIONS = 3
DEADLINE_S = 60

# Replication of the topics this check creates: run.sh's cluster pass sets
# 3 and 2; by default (one broker) 1 and the broker's min.insync.replicas.
REPLICATION_FACTOR = int(os.environ.get("SLUICE_COMPAT_REPLICATION_FACTOR") or 1)
MIN_INSYNC = os.environ.get("SLUICE_COMPAT_MIN_INSYNC_REPLICAS")
TOPIC_CONFIGS = {"min.insync.replicas": MIN_INSYNC} if MIN_INSYNC else {}


def produce(bootstrap, prefix, n):
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"delivery failed: {err}")

    p = Producer({"bootstrap.servers": bootstrap, "client.id": "sluice-compat-confluent", "acks": "all",
                  "linger.ms": 5, "message.timeout.ms": 30000})
    values = [f"{prefix}-{i}".encode() for i in range(n)]
    for i, v in enumerate(values):
        p.produce(TOPIC, key=f"k{i}".encode(), value=v, on_delivery=on_delivery)
        p.poll(0)
    if p.flush(30):
        errors.append("records not delivered within 30 s")
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return values


def consume(bootstrap, want):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "sluice-compat-confluent",
        "group.id": GROUP,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": 200,
    })
    got, errs = [], []
    try:
        c.subscribe([TOPIC])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(want) and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    errs.append(f"consume error: {msg.error()}")
                continue
            got.append(msg)
        if len(got) < len(want):
            errs.append(f"read {len(got)} of {len(want)} records within {DEADLINE_S}s")
            return got, errs
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            msg = c.poll(0.3)
            if msg is not None and not msg.error():
                got.append(msg)
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=15)
        for tp in committed:
            lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, tp.partition), timeout=15)
            if tp.error or tp.offset != hi:
                errs.append(f"partition {tp.partition}: committed {tp.offset} ({tp.error}), end offset {hi}")
    finally:
        c.close()
    return got, errs


def compare(run, want, got):
    values = [m.value() for m in got]
    if sorted(values) != sorted(want):
        old = [v for v in values if v not in want]
        missing = set(want) - set(values)
        return [f"run {run}: read {len(values)} records, want {len(want)}; "
                f"{len(old)} not expected (e.g. {old[:3]}), {len(missing)} missing"]
    return []


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "sluice-compat-confluent"})
    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR,
                                  config=TOPIC_CONFIGS)], request_timeout=15)[TOPIC].result(timeout=20)
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
    print(f"confluent-kafka group: {len(first)} records consumed and committed, a second run resumed with exactly {len(second)} new")
    return 0


if __name__ == "__main__":
    sys.exit(main())
