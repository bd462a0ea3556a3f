#!/usr/bin/env bash
# The benchmark command (make bench): installs and starts the real Kafka broker and ClickHouse
# server as make test does, builds tributary, runs the harness (tributary bench $BENCH_FLAGS),
# which writes BENCHMARKS.md and BENCHMARKS.json at the repository root, then stops the servers
# it started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

started=()
cleanup() {
	local rc=$?
	for s in "${started[@]}"; do "$ROOT/deploy/$s.sh" stop || true; done
	exit $rc
}
trap cleanup EXIT INT TERM

for s in clickhouse kafka; do
	if ! "$ROOT/deploy/$s.sh" status >/dev/null 2>&1; then
		started+=("$s")
	fi
	"$ROOT/deploy/$s.sh" start
done

export TRIBUTARY_TEST_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-19092}
export TRIBUTARY_TEST_CLICKHOUSE_ADDR=127.0.0.1:${CLICKHOUSE_TCP_PORT:-19000}

log "go build -o bin/tributary ./cmd/tributary"
go build -o bin/tributary ./cmd/tributary
log "tributary bench ${BENCH_FLAGS:-} (servers: kafka $TRIBUTARY_TEST_KAFKA_BROKERS, clickhouse $TRIBUTARY_TEST_CLICKHOUSE_ADDR)"
# shellcheck disable=SC2086
bin/tributary bench -out "$ROOT" -state "$ROOT/.state" ${BENCH_FLAGS:-}
