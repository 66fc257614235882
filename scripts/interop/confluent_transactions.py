"""Transactions with confluent-kafka (librdkafka): one producer commits,
another aborts, both with consumer offsets sent to the transaction; a
read_committed consumer sees only the committed records, a
read_uncommitted one every record, and the group's offset is the one
committed in a transaction.

usage: /usr/bin/python3 confluent_transactions.py BOOTSTRAP TOPIC
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 2
GROUP = "interop-confluent-txn"


def fail(msg):
    print(f"confluent-kafka transactions: {msg}", file=sys.stderr)
    sys.exit(1)


def producer(bootstrap, txn_id):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": 30000,
        "linger.ms": 5,
    })
    p.init_transactions(30)
    return p


def group_metadata(bootstrap):
    """The group metadata send_offsets_to_transaction wants, from a
    consumer of GROUP that has not joined (generation -1, as a client that
    commits for a group it is not a member of)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    return c, c.consumer_group_metadata()


def transaction(p, topic, values, commit, offset, metadata):
    """One transaction: values, value i to partition i % PARTITIONS, and
    offset for partition 0 of topic in GROUP; then commit or abort."""
    p.begin_transaction()
    for i, v in enumerate(values):
        p.produce(topic, key=v.encode(), value=v.encode(), partition=i % PARTITIONS)
    p.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], metadata, 30)
    if commit:
        p.commit_transaction(30)
    else:
        p.flush(30)  # written, then aborted
        p.abort_transaction(30)


def read_until_end(bootstrap, topic, isolation):
    """Every record of every partition up to its "end" record, by partition."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "interop-confluent-txn-reader",
        "enable.auto.commit": False,
        "isolation.level": isolation,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got = {p: [] for p in range(PARTITIONS)}
    ended = set()
    deadline = time.monotonic() + 30
    while len(ended) < PARTITIONS and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        v = msg.value().decode()
        got[msg.partition()].append(v)
        if v == "end":
            ended.add(msg.partition())
    c.close()
    if len(ended) < PARTITIONS:
        fail(f"{isolation}: no end record after 30s; read {got}")
    return got


def by_partition(*batches):
    out = {p: [] for p in range(PARTITIONS)}
    for b in batches:
        for i, v in enumerate(b):
            out[i % PARTITIONS].append(v)
    return out


def main(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)

    committed = producer(bootstrap, "interop-txn-commit")
    aborted = producer(bootstrap, "interop-txn-abort")
    consumer, metadata = group_metadata(bootstrap)

    first = [f"first-{i}" for i in range(6)]
    dropped = [f"aborted-{i}" for i in range(6)]
    second = [f"second-{i}" for i in range(6)]
    ends = ["end"] * PARTITIONS
    transaction(committed, topic, first, True, 3, metadata)
    transaction(aborted, topic, dropped, False, 7, metadata)
    transaction(committed, topic, second, True, 5, metadata)
    transaction(committed, topic, ends, True, 5, metadata)

    want = by_partition(first, second, ends)
    got = read_until_end(bootstrap, topic, "read_committed")
    if got != want:
        fail(f"read_committed read\n  {got}\nwant\n  {want}")
    want_all = by_partition(first, dropped, second, ends)
    got = read_until_end(bootstrap, topic, "read_uncommitted")
    if got != want_all:
        fail(f"read_uncommitted read\n  {got}\nwant\n  {want_all}")

    offset = consumer.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
    consumer.close()
    if offset != 5:
        fail(f"group {GROUP} offset of {topic}[0] is {offset}, want 5 (the aborted transaction's 7 must not show)")
    print(f"confluent-kafka transactions: committed {len(first) + len(second)} records, aborted {len(dropped)}; "
          "read_committed saw only the committed ones, the group offset is the committed one")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
