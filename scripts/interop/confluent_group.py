"""A confluent-kafka (librdkafka) consumer group: one consumer reads part of
a topic and commits; a second one, in the same group, resumes where the
first committed; then two consumers at once share the partitions.

usage: /usr/bin/python3 confluent_group.py BOOTSTRAP TOPIC
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
PER_PARTITION = 10


def fail(msg):
    sys.exit(f"confluent-kafka group: {msg}")


def create_and_fill(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    futures[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p, on_delivery=on_delivery)
    if producer.flush(30) != 0:
        fail("records still in flight after 30s")
    if errors:
        fail(f"produce failed: {errors}")


def consumer(bootstrap, group, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    conf.update(extra)
    return Consumer(conf)


def read(c, n, timeout=60):
    """Polls c until it has returned n records; returns their values."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        if time.monotonic() > deadline:
            fail(f"read {len(got)} of {n} records in {timeout}s")
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append(msg.value().decode())
    return got


def main(bootstrap, topic):
    create_and_fill(bootstrap, topic)
    everything = {f"{p}-{i}" for p in range(PARTITIONS) for i in range(PER_PARTITION)}
    group = topic + "-group"
    half = PARTITIONS * PER_PARTITION // 2

    # The first consumer reads half and commits what it read.
    first = consumer(bootstrap, group)
    first.subscribe([topic])
    got1 = read(first, half)
    first.commit(asynchronous=False)
    first.close()

    # A second consumer in the group resumes after the commits: it reads
    # exactly the other half.
    second = consumer(bootstrap, group)
    second.subscribe([topic])
    got2 = read(second, len(everything) - half)
    extra = second.poll(2.0)
    if extra is not None and not extra.error():
        fail(f"the second consumer read past the end: {extra.value()!r}")
    second.commit(asynchronous=False)
    committed = second.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    second.close()

    if set(got1) & set(got2):
        fail(f"records read by both consumers: {sorted(set(got1) & set(got2))}")
    if set(got1) | set(got2) != everything or len(got1) + len(got2) != len(everything):
        fail(f"records missing: {sorted(everything - set(got1) - set(got2))}")
    offsets = {tp.partition: tp.offset for tp in committed}
    if offsets != {p: PER_PARTITION for p in range(PARTITIONS)}:
        fail(f"committed offsets {offsets}, want {PER_PARTITION} on every partition")
    print(f"confluent-kafka group: {len(got1)} records read and committed, the next consumer resumed with the other {len(got2)}")

    # Two consumers at once split the partitions between them.
    a = consumer(bootstrap, group + "-shared", **{"partition.assignment.strategy": "cooperative-sticky"})
    b = consumer(bootstrap, group + "-shared", **{"partition.assignment.strategy": "cooperative-sticky"})
    a.subscribe([topic])
    b.subscribe([topic])
    deadline = time.monotonic() + 60
    while True:
        for c in (a, b):
            msg = c.poll(0.2)
            if msg is not None and msg.error():
                raise KafkaException(msg.error())
        pa = {tp.partition for tp in a.assignment()}
        pb = {tp.partition for tp in b.assignment()}
        if pa and pb and not pa & pb and pa | pb == set(range(PARTITIONS)):
            break
        if time.monotonic() > deadline:
            fail(f"two consumers never split the partitions: {sorted(pa)} and {sorted(pb)}")
    a.close()
    b.close()
    print(f"confluent-kafka group: two consumers share the partitions: {sorted(pa)} and {sorted(pb)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
