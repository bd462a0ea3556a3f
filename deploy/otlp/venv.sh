#!/usr/bin/env bash
# Makes the Python environment producer/gateway's Python SDK test runs in: a venv in
# $TRIBUTARY_STATE_DIR/otlp-venv with deploy/otlp/requirements.txt (the OpenTelemetry Python SDK
# and OTLP exporters) from PyPI. Idempotent; made again when the requirements change. Prints the
# interpreter to use; fails (non-zero, naming the step) when it cannot install.
source "$(dirname "$0")/../lib.sh"
python_venv otlp-venv "$ROOT/deploy/otlp/requirements.txt" "the OpenTelemetry Python SDK and OTLP exporters"
