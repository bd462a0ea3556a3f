#!/usr/bin/env bash
# Current ClickHouse releases, in-process: installs chdb from PyPI into one Python venv per release
# under $STATE/chdb/, for internal/chdbcheck (which replays every statement Tributary sends on
# them). No current ClickHouse server can be installed or started on these machines; chdb is the
# ClickHouse engine as a Python module.
#
#   deploy/chdb.sh install   create the venvs that are missing (pip, about 2 minutes the first time)
#   deploy/chdb.sh pythons   print "<package>==<version> <ClickHouse release> <python>", one a line
#
# To prove another release, add a line to RELEASES: the pip requirement and the ClickHouse release
# it embeds (the test checks that the engine reports that release).
source "$(dirname "$0")/lib.sh"

RELEASES=(
	"chdb==3.7.2 25.8"       # the LTS that docker-compose.yml runs
	"chdb-core==26.9.0 26.9" # the newest chdb-core
)
DIR=$STATE/chdb

venv_of() { echo "$DIR/${1//==/-}"; }

python_base() {
	if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
		apt_install python3 python3-venv
	fi
	command -v python3
}

install() {
	local line req release venv py
	mkdir -p "$DIR"
	for line in "${RELEASES[@]}"; do
		read -r req release <<<"$line"
		venv=$(venv_of "$req")
		[ -f "$venv/.installed" ] && continue
		py=${py:-$(python_base)}
		log "installing $req (ClickHouse $release) into $venv"
		rm -rf "$venv"
		"$py" -m venv "$venv"
		"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$req" >&2 ||
			die "pip install $req failed (see above)"
		"$venv/bin/python" -c 'import chdb; print(chdb.query("SELECT version()", "TSV"))' >&2 ||
			die "$req installed but does not import"
		touch "$venv/.installed"
	done
}

pythons() {
	local line req release
	for line in "${RELEASES[@]}"; do
		read -r req release <<<"$line"
		echo "$req $release $(venv_of "$req")/bin/python"
	done
}

case "${1:-}" in
install) install ;;
pythons) pythons ;;
*) die "usage: $0 install|pythons" ;;
esac
