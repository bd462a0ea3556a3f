#!/usr/bin/env bash
# The test command (make test): installs and starts the real Kafka broker and ClickHouse server,
# runs go vet and every test with -race (integration and end-to-end included, fuzz seed corpora
# too), then stops the servers it started. Fails if a server cannot start: nothing is skipped.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# The UI test drives Debian's Chromium headless.
command -v chromium >/dev/null 2>&1 || apt_install chromium
# internal/chdbcheck replays every statement on current ClickHouse releases (chdb, from PyPI); it
# fails if they cannot be installed, and the other tests still run.
bash "$ROOT/deploy/chdb.sh" install || log "chdb could not be installed: internal/chdbcheck will fail"
# producer/gateway's TestOTLPWithThePythonSDK sends with the OpenTelemetry Python SDK (PyPI); it
# runs the same script and fails, naming it, if the SDK cannot be installed.
bash "$ROOT/deploy/otlp/venv.sh" >/dev/null || log "the OpenTelemetry Python SDK could not be installed: TestOTLPWithThePythonSDK will fail"
# producer/gateway's TestOTLPThroughTheCollector runs a Collector built from the upstream modules
# (Go module proxy); built here, before the tests compete for the cores, and cached in .state/.
bash "$ROOT/deploy/otlp/collector.sh" >/dev/null || log "the OpenTelemetry Collector could not be built: TestOTLPThroughTheCollector will fail"

start_servers

log "go vet ./..."
go vet ./...
log "go test -race ./... (servers: kafka $TRIBUTARY_TEST_KAFKA_BROKERS, clickhouse $TRIBUTARY_TEST_CLICKHOUSE_ADDR)"
go test -race -count=1 -timeout "${TEST_TIMEOUT:-20m}" ${TEST_FLAGS:-} ./...
