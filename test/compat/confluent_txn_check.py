"""confluent-kafka (librdkafka) transactions against a running Sluice broker.

A transactional producer (transactional.id, init_transactions) runs
transactions over three partitions, committing the even ones and aborting
the odd ones; a read_committed consumer must then read exactly the
committed records, and a read_uncommitted one all of them.

Usage: /usr/bin/python3 confluent_txn_check.py HOST:PORT

Env: SLUICE_COMPAT_REPLICATION_FACTOR and SLUICE_COMPAT_MIN_INSYNC_REPLICAS
as in confluent_check.py.
"""

import os
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "compat-confluent-txn"
PARTITIONS = 3
TXNS = 10
PER_TXN = 15
DEADLINE_S = 60

REPLICATION_FACTOR = int(os.environ.get("SLUICE_COMPAT_REPLICATION_FACTOR") or 1)
MIN_INSYNC = os.environ.get("SLUICE_COMPAT_MIN_INSYNC_REPLICAS")
TOPIC_CONFIGS = {"min.insync.replicas": MIN_INSYNC} if MIN_INSYNC else {}


def produce(bootstrap):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "sluice-compat-confluent-txn",
        "transactional.id": "compat-confluent-txn",
        "transaction.timeout.ms": 30000,
    })
    p.init_transactions(30)
    committed = set()
    for t in range(TXNS):
        p.begin_transaction()
        commit = t % 2 == 0
        for i in range(PER_TXN):
            value = f"{'commit' if commit else 'abort'}-{t}-{i}".encode()
            p.produce(TOPIC, value=value, partition=i % PARTITIONS)
            if commit:
                committed.add(value)
        # Sent before the abort: librdkafka drops what it has not sent yet
        # when aborting, and the aborted records must be in the log for
        # read_committed to prove it skips them.
        if p.flush(30):
            raise RuntimeError(f"transaction {t}: records not sent within 30 s")
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    return committed


def consume(bootstrap, isolation, want):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "sluice-compat-confluent-txn",
        "group.id": "sluice-compat-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": isolation,
        "fetch.wait.max.ms": 200,
    })
    got, errors = [], []
    try:
        c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        deadline = time.monotonic() + DEADLINE_S
        quiet_until = None
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if len(got) >= want:
                # A moment more, to catch records that should not be there.
                quiet_until = quiet_until or time.monotonic() + 1
                if time.monotonic() > quiet_until:
                    break
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    errors.append(f"consume error: {msg.error()}")
                continue
            got.append(msg.value())
    finally:
        c.close()
    return got, errors


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap = sys.argv[1]
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "sluice-compat-confluent-txn"})
    admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=REPLICATION_FACTOR,
                                  config=TOPIC_CONFIGS)], request_timeout=15)[TOPIC].result(timeout=20)
    errs = []
    committed = produce(bootstrap)
    got, cerrs = consume(bootstrap, "read_committed", len(committed))
    errs.extend(cerrs[:5])
    aborted = [v for v in got if not v.startswith(b"commit-")]
    if aborted:
        errs.append(f"read_committed returned {len(aborted)} aborted records, e.g. {aborted[0]!r}")
    if sorted(v for v in got if v.startswith(b"commit-")) != sorted(committed):
        errs.append(f"read_committed returned {len(got)} records, want the {len(committed)} committed ones once each")
    every, cerrs = consume(bootstrap, "read_uncommitted", TXNS * PER_TXN)
    errs.extend(cerrs[:5])
    if len(every) != TXNS * PER_TXN:
        errs.append(f"read_uncommitted returned {len(every)} records, want {TXNS * PER_TXN}")
    for e in errs[:20]:
        print(e, file=sys.stderr)
    if errs:
        return 1
    print(f"confluent-kafka {sys.modules['confluent_kafka'].version()[0]}: {TXNS} transactions (half aborted) x {PER_TXN} records, "
          f"read_committed saw exactly the {len(committed)} committed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
