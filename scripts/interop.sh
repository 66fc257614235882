#!/usr/bin/env bash
# Interop: start a Samsa broker and run Kafka clients that are not written in
# Go against it: kcat (-L, produce, consume), confluent-kafka (librdkafka)
# and kafka-python, each producing and consuming records with keys and
# headers; kcat's balanced consumer (-G) and a confluent-kafka consumer
# group each resume from the offsets they committed; a confluent-kafka
# transactional producer commits and aborts, and a read_committed consumer
# sees only the committed records. Installs the clients with apt-get when missing. Exits non-zero on
# any failure; the broker is stopped on exit.
#
# usage: scripts/interop.sh                 install what is missing, then run
#        scripts/interop.sh --install-only  install what is missing (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Python modules belong to the system interpreter; the python3
# first on PATH may be another one.
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1

log() { printf '== %s\n' "$*"; }
fail() { printf 'interop: FAIL: %s\n' "$*" >&2; exit 1; }

install_clients() {
  local need=()
  command -v kcat >/dev/null 2>&1 || need+=(kcat)
  [ -x "$PY" ] || need+=(python3)
  if [ -x "$PY" ]; then
    "$PY" -c 'import confluent_kafka' 2>/dev/null || need+=(python3-confluent-kafka)
    "$PY" -c 'import kafka' 2>/dev/null || need+=(python3-kafka)
  else
    need+=(python3-confluent-kafka python3-kafka)
  fi
  [ ${#need[@]} -eq 0 ] && return
  log "installing ${need[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; then
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install_clients
if [ "${1:-}" = --install-only ]; then exit 0; fi
log "kcat $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p'), confluent-kafka $("$PY" -c 'import confluent_kafka as c; print(c.version()[0], "librdkafka", c.libversion()[0])'), kafka-python $("$PY" -c 'import kafka; print(kafka.__version__)')"

work=$(mktemp -d)
pid=
stop_broker() {
  local status=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || { echo "interop: broker exited $? on SIGTERM" >&2; status=1; }
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/samsa.log" ]; then
    echo "--- broker log (last 50 lines)" >&2
    tail -n 50 "$work/samsa.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap stop_broker EXIT

log "building samsa"
go build -o "$work/samsa" ./cmd/samsa
kafka_port=$(free_port)
http_port=$(free_port)
bootstrap=127.0.0.1:$kafka_port
"$work/samsa" serve --data-dir "$work/data" --kafka-addr "$bootstrap" \
  --http-addr "127.0.0.1:$http_port" --log-format text >"$work/samsa.log" 2>&1 &
pid=$!

log "waiting for the broker on $bootstrap"
ready=
for _ in $(seq 300); do
  kill -0 "$pid" 2>/dev/null || fail "broker exited during start-up"
  if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$http_port/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || fail "broker not ready after 30s"

# --- kcat
log "kcat -L"
meta=$(timeout 30 kcat -b "$bootstrap" -L) || fail "kcat -L: exit $?"
echo "$meta" | grep -q "1 brokers:" || fail "kcat -L: no broker list: $meta"
echo "$meta" | grep -q "broker 0 at 127.0.0.1:$kafka_port" || fail "kcat -L: broker 0 not at $bootstrap: $meta"

log "kcat produce and consume"
topic=interop-kcat
printf 'k1:v1\nk2:v2\nk3:v3\n' |
  timeout 30 kcat -b "$bootstrap" -P -t "$topic" -K: -H source=kcat -H trace=abc -X topic.request.required.acks=-1 -X message.timeout.ms=20000 ||
  fail "kcat produce: exit $?"
got=$(timeout 30 kcat -b "$bootstrap" -C -t "$topic" -o beginning -e -q -f '%k|%s|%h|%o\n') ||
  fail "kcat consume: exit $?"
want=$'k1|v1|source=kcat,trace=abc|0\nk2|v2|source=kcat,trace=abc|1\nk3|v3|source=kcat,trace=abc|2'
[ "$got" = "$want" ] || fail "kcat consume: got
$got
want
$want"
meta=$(timeout 30 kcat -b "$bootstrap" -L -t "$topic") || fail "kcat -L -t $topic: exit $?"
grep -q "topic \"$topic\" with 1 partitions" <<<"$meta" || fail "kcat -L -t $topic: topic not listed: $meta"

log "kcat -G balanced consumer resumes from its commits"
topic=interop-kcat-group
"$PY" -c 'import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
admin.create_topics([NewTopic(sys.argv[2], num_partitions=2, replication_factor=1)])[sys.argv[2]].result(30)' \
  "$bootstrap" "$topic" ||
  fail "create $topic: exit $?"
for p in 0 1; do
  printf 'a%s\nb%s\nc%s\n' $p $p $p | timeout 30 kcat -b "$bootstrap" -P -t "$topic" -p $p -X topic.request.required.acks=-1 ||
    fail "kcat produce to $topic [$p]: exit $?"
done
# -o would be applied to every assignment; auto.offset.reset only where
# the group has no commit. kcat commits what it consumed when it exits.
kcat_group() {
  timeout 60 kcat -b "$bootstrap" -X auto.offset.reset=earliest -q -f '%s\n' "$@" -G interop-kcat "$topic"
}
first=$(kcat_group -c 4) || fail "kcat -G first run: exit $?"
second=$(kcat_group -c 2) || fail "kcat -G second run: exit $?"
rest=$(kcat_group -e) || fail "kcat -G third run: exit $?"
got=$(printf '%s\n%s\n' "$first" "$second" | sort | tr '\n' ' ')
[ "$got" = "a0 a1 b0 b1 c0 c1 " ] || fail "kcat -G: the two runs read
$first
and
$second
want each of a0 b0 c0 a1 b1 c1 once"
[ -z "$rest" ] || fail "kcat -G: a run after everything was committed read
$rest"

# --- Python clients
log "confluent-kafka round trip"
timeout 120 "$PY" scripts/interop/confluent_roundtrip.py "$bootstrap" interop-confluent ||
  fail "confluent-kafka round trip: exit $?"
log "confluent-kafka consumer group resumes from its commits"
timeout 180 "$PY" scripts/interop/confluent_group.py "$bootstrap" interop-confluent-group ||
  fail "confluent-kafka consumer group: exit $?"
log "confluent-kafka transactions: commit, abort, read_committed"
timeout 120 "$PY" scripts/interop/confluent_transactions.py "$bootstrap" interop-confluent-txn ||
  fail "confluent-kafka transactions: exit $?"
log "kafka-python round trip"
timeout 120 "$PY" scripts/interop/kafka_python_roundtrip.py "$bootstrap" interop-kafka-python ||
  fail "kafka-python round trip: exit $?"

log "all interop checks passed"
