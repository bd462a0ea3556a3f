#!/usr/bin/env bash
# The test command (make test): installs and starts the real Kafka broker and ClickHouse server,
# runs go vet and every test with -race (integration and end-to-end included, fuzz seed corpora
# too), then stops the servers it started. Fails if a server cannot start: nothing is skipped.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

started=()
cleanup() {
	local rc=$?
	for s in "${started[@]}"; do "$ROOT/deploy/$s.sh" stop || true; done
	exit $rc
}
trap cleanup EXIT INT TERM

# The UI test drives Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 || apt_install chromium

for s in clickhouse kafka; do
	if ! "$ROOT/deploy/$s.sh" status >/dev/null 2>&1; then
		started+=("$s")
	fi
	"$ROOT/deploy/$s.sh" start
done

export TRIBUTARY_TEST_KAFKA_BROKERS=127.0.0.1:${KAFKA_PORT:-19092}
export TRIBUTARY_TEST_KAFKA_SASL_BROKERS=127.0.0.1:${KAFKA_SASL_PORT:-19094}
export TRIBUTARY_TEST_CLICKHOUSE_ADDR=127.0.0.1:${CLICKHOUSE_TCP_PORT:-19000}

log "go vet ./..."
go vet ./...
log "go test -race ./... (servers: kafka $TRIBUTARY_TEST_KAFKA_BROKERS, clickhouse $TRIBUTARY_TEST_CLICKHOUSE_ADDR)"
go test -race -count=1 -timeout "${TEST_TIMEOUT:-20m}" ${TEST_FLAGS:-} ./...
