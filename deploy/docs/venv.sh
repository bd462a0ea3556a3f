#!/usr/bin/env bash
# Makes the Python environment that docs/*.md's Python blocks run in (internal/docscheck): a venv
# in $TRIBUTARY_STATE_DIR/docs-venv with deploy/docs/requirements.txt from PyPI. Idempotent; made
# again when the requirements change. Prints the interpreter to use.
source "$(dirname "$0")/../lib.sh"
DIR=$STATE/docs-venv
REQ=$ROOT/deploy/docs/requirements.txt
mkdir -p "$STATE" && exec 9>"$STATE/docs-venv.lock" && flock 9   # one install at a time
if ! cmp -s "$DIR/.complete" "$REQ"; then
	command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
	rm -rf "$DIR"
	if ! python3 -m venv "$DIR" >&2; then
		apt_install python3-venv
		rm -rf "$DIR" && python3 -m venv "$DIR" >&2 || die "python3 -m venv failed"
	fi
	log "installing the docs' Python packages from PyPI"
	"$DIR/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2 || die "pip could not install $REQ"
	cp "$REQ" "$DIR/.complete"
fi
echo "$DIR/bin/python"
