#!/usr/bin/env bash
# Switchboard's one test command (README "Test"). It installs and starts what the suites need
# when it is missing, then runs every suite:
#   1. formatting and clippy,
#   2. unit + integration tests on SQLite (plain `cargo test`),
#   3. the integration tests again on PostgreSQL, each test in a fresh database.
# On a machine where PostgreSQL already answers on 127.0.0.1:5432 (trust auth) it uses it;
# otherwise it installs Debian's postgresql and runs a private cluster on 127.0.0.1:55432.
# Overrides: SWITCHBOARD_TEST_PG_URL (an admin URL), CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchboard-target}"
TOOLS="${SWITCHBOARD_TOOLS_DIR:-/var/tmp/switchboard-tools}"
mkdir -p "$TOOLS"
LOG="$TOOLS/test-output.log"
: > "$LOG"

say() { printf '\n==> %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "need root to apt-get install $*" >&2
    return 1
  fi
  if [ ! -f "$TOOLS/.apt-updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch "$TOOLS/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_answers() { # $1 = admin URL
  command -v psql >/dev/null 2>&1 && psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if [ -n "${SWITCHBOARD_TEST_PG_URL:-}" ]; then
    PG_URL="$SWITCHBOARD_TEST_PG_URL"
    pg_answers "$PG_URL" || { echo "SWITCHBOARD_TEST_PG_URL does not answer" >&2; exit 1; }
    return
  fi
  PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
  if pg_answers "$PG_URL"; then
    return
  fi
  # Our own throwaway cluster with trust auth on a loopback port.
  PG_URL="postgres://postgres@127.0.0.1:55432/postgres"
  if pg_answers "$PG_URL"; then
    return
  fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "installing PostgreSQL (Debian package)"
    apt_install postgresql
  fi
  local bin data
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  data="$TOOLS/pgdata"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    chown postgres:postgres "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
  fi
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$TOOLS/pg.log" -w \
    -o "-p 55432 -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  pg_answers "$PG_URL" || { echo "PostgreSQL did not start; see $TOOLS/pg.log" >&2; exit 1; }
}

ensure_openapi_validator() {
  local venv="$TOOLS/venv"
  if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    say "installing openapi-spec-validator (PyPI) into $venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q openapi-spec-validator
  fi
  export SWITCHBOARD_OPENAPI_VALIDATOR="$venv/bin/openapi-spec-validator"
}

status=0
run_suite() { # $1 = name, rest = command; a failing suite fails the run but the others still run
  local name="$1"; shift
  say "$name"
  if ! "$@" 2>&1 | tee -a "$LOG"; then
    echo "!! $name failed" | tee -a "$LOG"
    status=1
  fi
}

ensure_postgres
ensure_openapi_validator
export SWITCHBOARD_REQUIRE_TOOLS=1

run_suite "format" cargo fmt --all -- --check
run_suite "clippy" cargo clippy --all-targets --quiet -- -D warnings
run_suite "unit + integration tests on SQLite" cargo test --quiet
run_suite "integration tests on PostgreSQL ($PG_URL)" \
  env SWITCHBOARD_TEST_DATABASE="$PG_URL" cargo test --quiet --tests

# One closing line for the whole run.
passed=$(grep -Eo '[0-9]+ passed' "$LOG" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$LOG" | awk '{s+=$1} END {print s+0}')
echo
echo "switchboard: $passed passed, $failed failed"
exit "$status"
