#!/usr/bin/env bash
# Makes the Python environment that docs/*.md's Python blocks run in (internal/docscheck): a venv
# in $TRIBUTARY_STATE_DIR/docs-venv with deploy/docs/requirements.txt from PyPI. Idempotent; made
# again when the requirements change. Prints the interpreter to use.
source "$(dirname "$0")/../lib.sh"
python_venv docs-venv "$ROOT/deploy/docs/requirements.txt" "the docs' Python packages"
