"""Produce and consume with kafka-python.

usage: /usr/bin/python3 kafka_python_roundtrip.py BOOTSTRAP TOPIC
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from common import RECORDS, check


def main(bootstrap, topic):
    # api_version is left to kafka-python's probe, so the probe is exercised.
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in RECORDS]
    producer.flush(30)
    for f in futures:
        f.get(timeout=30)
    producer.close()

    # No group: assign and seek.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(RECORDS) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            for r in records:
                got.append((r.key, r.value, list(r.headers)))
    consumer.close()
    check("kafka-python", got)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
