#!/usr/bin/env bash
# Switchboard's one test command (README "Test"). It installs and starts what the suites need
# when it is missing, then runs every suite:
#   1. formatting and clippy,
#   2. unit + integration tests on SQLite (plain `cargo test`),
#   3. the integration tests again on PostgreSQL, each test in a fresh database, with Redis for the
#      two-node tests (tests/multinode.rs: two server processes sharing PostgreSQL and Redis),
#   4. schemathesis (scripts/schemathesis.sh) against the debug binary on SQLite and on PostgreSQL,
#   5. the dashboard: the committed web/dist matches a fresh `npm run build`, then the release
#      binary runs the end-to-end tests in Debian's headless Chromium (tests/e2e/run.mjs, with
#      screenshots in test-artifacts/screenshots/) and the first-paint budget with 10,000
#      tickets (tests/e2e/perf.mjs; SWITCHBOARD_SKIP_PERF=1 skips it).
# On a machine where PostgreSQL already answers on 127.0.0.1:5432 (trust auth) it uses it;
# otherwise it installs Debian's postgresql and runs a private cluster on 127.0.0.1:55432.
# Likewise Redis: 127.0.0.1:6379 if it answers, else Debian's redis-server privately on 127.0.0.1:56379.
# Overrides: SWITCHBOARD_TEST_PG_URL (an admin URL), SWITCHBOARD_TEST_REDIS (redis://…), CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchboard-target}"
TOOLS="${SWITCHBOARD_TOOLS_DIR:-/var/tmp/switchboard-tools}"
mkdir -p "$TOOLS"
LOG="$TOOLS/test-output.log"
: > "$LOG"

# Each step is stamped with the seconds since the start, so the log shows where CI time goes.
say() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }

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

redis_answers() { # redis-cli connection arguments
  command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli "$@" ping 2>/dev/null)" = PONG ]
}

find_redis() { # sets and exports SWITCHBOARD_TEST_REDIS if a Redis answers on 6379 or on our private port
  local port
  for port in 6379 56379; do
    if redis_answers -h 127.0.0.1 -p "$port"; then
      export SWITCHBOARD_TEST_REDIS="redis://127.0.0.1:$port"
      return 0
    fi
  done
  return 1
}

ensure_redis() {
  if [ -n "${SWITCHBOARD_TEST_REDIS:-}" ]; then
    redis_answers -u "$SWITCHBOARD_TEST_REDIS" || { echo "SWITCHBOARD_TEST_REDIS does not answer" >&2; exit 1; }
    export SWITCHBOARD_TEST_REDIS
    return
  fi
  find_redis && return
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    say "installing Redis (Debian package)"
    apt_install redis-server
    find_redis && return
  fi
  # Our own throwaway Redis on a loopback port, nothing kept on disk.
  say "starting a private Redis on 127.0.0.1:56379"
  redis-server --port 56379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$TOOLS" --logfile "$TOOLS/redis.log" >/dev/null
  local _
  for _ in $(seq 50); do
    find_redis && return
    sleep 0.1
  done
  echo "Redis did not start; see $TOOLS/redis.log" >&2
  exit 1
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

ensure_socat() { # scripts/schemathesis.sh reaches PostgreSQL from its network namespace through socat
  command -v socat >/dev/null 2>&1 || { say "installing socat (Debian package)"; apt_install socat; }
}

ensure_mail_servers() { # Debian's Dovecot for IMAP/POP3 and aiosmtpd (PyPI) as the SMTP sink (tests/email/net.rs)
  if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/pop3 ] \
    || ! command -v openssl >/dev/null 2>&1; then
    say "installing Dovecot (Debian packages dovecot-imapd, dovecot-pop3d)"
    apt_install dovecot-imapd dovecot-pop3d openssl
  fi
  # The tests run private Dovecots on free ports; a system one (started by the package where there is an init
  # system) would only hold 110/143/993/995. Stop it if it runs; harmless where there is none.
  if [ -f /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
    /usr/sbin/dovecot stop >/dev/null 2>&1 || true
  fi
  local venv="$TOOLS/venv"
  if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
  fi
  if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    say "installing aiosmtpd (PyPI) into $venv"
    "$venv/bin/pip" install -q aiosmtpd
  fi
  export SWITCHBOARD_TEST_AIOSMTPD_PYTHON="$venv/bin/python"
}

ensure_browser() { # Debian's chromium (never a downloaded browser) and the dashboard's npm packages
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium (Debian package)"
    apt_install chromium
  fi
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
    echo "the dashboard needs Node.js 20.19 or later (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
  fi
  local dir
  for dir in web tests/e2e; do
    # npm ci only when the lockfile changed since the last install.
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.switchboard-lock" 2>/dev/null; then
      say "npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && cp "$dir/package-lock.json" "$dir/node_modules/.switchboard-lock"
    fi
  done
}

web_dist_current() { # the committed web/dist is exactly what `npm run build` makes from web/
  local out="$TOOLS/web-dist-check"
  rm -rf "$out"
  (cd web && npx tsc --noEmit && npx vite build --outDir "$out" --emptyOutDir --logLevel warn) || {
    echo "web: 0 passed, 1 failed"
    return 1
  }
  if diff -r web/dist "$out" >/dev/null; then
    echo "web/dist is current: 1 passed, 0 failed"
  else
    diff -rq web/dist "$out" || true
    echo "web/dist is stale: run (cd web && npm run build) and commit web/dist"
    echo "web/dist: 0 passed, 1 failed"
    return 1
  fi
}

e2e_tests() { (cd tests/e2e && node run.mjs); }
dashboard_perf() { (cd tests/e2e && node perf.mjs); }

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
ensure_redis
ensure_openapi_validator
ensure_socat
ensure_mail_servers
ensure_browser
export SWITCHBOARD_REQUIRE_TOOLS=1

run_suite "format" cargo fmt --all -- --check
run_suite "clippy" cargo clippy --all-targets --quiet -- -D warnings
# The two-node tests need PostgreSQL: the SQLite run names its backend so that they skip there.
run_suite "unit + integration tests on SQLite" env SWITCHBOARD_TEST_DATABASE=sqlite cargo test --quiet
run_suite "integration tests on PostgreSQL ($PG_URL) and Redis ($SWITCHBOARD_TEST_REDIS)" \
  env SWITCHBOARD_TEST_DATABASE="$PG_URL" SWITCHBOARD_TEST_REDIS="$SWITCHBOARD_TEST_REDIS" cargo test --quiet --tests

# The API against its own OpenAPI document (schemathesis from PyPI, a short bounded run with an admin's and an
# agent's token): no 5xx, no undocumented status, every body as documented. On SQLite, then on PostgreSQL.
run_suite "schemathesis on SQLite" env SWITCHBOARD_TOOLS_DIR="$TOOLS" bash scripts/schemathesis.sh
run_suite "schemathesis on PostgreSQL" env SWITCHBOARD_TOOLS_DIR="$TOOLS" bash scripts/schemathesis.sh "$PG_URL"

# The dashboard, in a real browser against the real binary (which embeds web/dist).
run_suite "dashboard build (web/dist is current)" web_dist_current
say "release build (embeds web/dist)"
if cargo build --release --quiet 2>&1 | tee -a "$LOG"; then
  run_suite "dashboard end-to-end tests (headless Chromium)" e2e_tests
  if [ -z "${SWITCHBOARD_SKIP_PERF:-}" ]; then
    # A measurement, not a test: speed is reported, never asserted (the figures go to the log).
    say "dashboard first paint with 10,000 tickets (measurement)"
    dashboard_perf 2>&1 | grep -v ' passed, ' | tee "$TOOLS/dashboard-perf.txt" || true
  fi
else
  echo "!! release build failed: the end-to-end tests did not run" | tee -a "$LOG"
  status=1
fi

# One closing line for the whole run.
passed=$(grep -Eo '[0-9]+ passed' "$LOG" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$LOG" | awk '{s+=$1} END {print s+0}')
echo
echo "wall time: ${SECONDS}s"
echo "switchboard: $passed passed, $failed failed"
exit "$status"
