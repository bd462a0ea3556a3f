#!/usr/bin/env bash
# Makes the Python environment producer/gateway's Python SDK test runs in: a venv in
# $TRIBUTARY_STATE_DIR/otlp-venv with deploy/otlp/requirements.txt (the OpenTelemetry Python SDK
# and OTLP exporters) from PyPI. Idempotent; made again when the requirements change. Prints the
# interpreter to use; fails (non-zero, naming the step) when it cannot install.
source "$(dirname "$0")/../lib.sh"
DIR=$STATE/otlp-venv
REQ=$ROOT/deploy/otlp/requirements.txt
mkdir -p "$STATE" && exec 9>"$STATE/otlp-venv.lock" && flock 9   # one install at a time
if ! cmp -s "$DIR/.complete" "$REQ"; then
	command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
	rm -rf "$DIR"
	if ! python3 -m venv "$DIR" >&2; then
		apt_install python3-venv
		rm -rf "$DIR" && python3 -m venv "$DIR" >&2 || die "python3 -m venv failed"
	fi
	log "installing the OpenTelemetry Python SDK and OTLP exporters from PyPI"
	"$DIR/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2 || die "pip could not install $REQ"
	cp "$REQ" "$DIR/.complete"
fi
echo "$DIR/bin/python"
