#!/usr/bin/env bash
# Builds the OpenTelemetry Collector of deploy/otlp/collector (the upstream Collector modules at the
# release its go.mod names, from the Go module proxy) with go build, into
# $TRIBUTARY_STATE_DIR/otelcol/KEY/otelcol-tributary, KEY a hash of its go.mod, go.sum, main.go,
# this script and the Go version: built once, again when one of them changes (older builds are
# removed once the new one is built). Prints the binary's path; fails (non-zero, naming the step) when it cannot build. producer/gateway's
# TestOTLPThroughTheCollector runs it.
source "$(dirname "$0")/../lib.sh"
SRC=$ROOT/deploy/otlp/collector
DIR=$STATE/otelcol
command -v go >/dev/null 2>&1 || die "go is not on PATH: it builds the Collector"
key=$( { cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" "$ROOT/deploy/otlp/collector.sh"; go version; } | sha256sum | cut -c1-16)
BIN=$DIR/$key/otelcol-tributary
# One build at a time: test processes may run this at once.
mkdir -p "$DIR" && exec 9>"$DIR/build.lock" && flock 9
if [ ! -x "$BIN" ]; then
	mkdir -p "$DIR/$key"
	log "building the OpenTelemetry Collector ($(sed -n 's|^\tgo.opentelemetry.io/collector/otelcol \(v[^ ]*\)$|otelcol \1|p' "$SRC/go.mod")) from the Go module proxy"
	start=$SECONDS
	if ! (cd "$SRC" && GOWORK=off go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$BIN.tmp" .) >&2; then
		rm -rf "${DIR:?}/$key"
		die "go build in deploy/otlp/collector failed (the Collector's modules come from the Go module proxy)"
	fi
	mv "$BIN.tmp" "$BIN"
	# Builds of other sources are not used again.
	find "$DIR" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
	log "built $BIN in $((SECONDS - start)) s"
fi
echo "$BIN"
