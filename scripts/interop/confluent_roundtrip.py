"""Produce and consume with confluent-kafka (librdkafka).

usage: /usr/bin/python3 confluent_roundtrip.py BOOTSTRAP TOPIC
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING

from common import RECORDS, check


def main(bootstrap, topic):
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    for key, value, headers in RECORDS:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
    if producer.flush(30) != 0:
        sys.exit("confluent-kafka: records still in flight after 30s")
    if errors:
        sys.exit(f"confluent-kafka: produce failed: {errors}")

    # assign, not subscribe: the round trip needs no consumer group.
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "interop-confluent",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(RECORDS) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append((msg.key(), msg.value(), msg.headers()))
    consumer.close()
    check("confluent-kafka", got)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
