#!/usr/bin/env bash
# Fuzz the running server against its own OpenAPI document with schemathesis (PyPI, pinned below):
# a fresh data directory and database, a super admin made with `switchboard admin create`, an agent
# with access to one channel, a few rows so that ids exist, then `schemathesis run` once with the
# admin's token and once with the agent's. Checks: no 5xx, every status and content type documented,
# every body matching its documented schema. Ends with `schemathesis: N passed, M failed` (operations
# × tokens) and fails when schemathesis found anything.
#
#   scripts/schemathesis.sh                      # SQLite, a short run (5 examples per operation)
#   scripts/schemathesis.sh postgres://postgres@127.0.0.1:55432/postgres   # a fresh database on PostgreSQL
#   SCHEMATHESIS_EXAMPLES=100 scripts/schemathesis.sh                       # the longer run
#
# The server and schemathesis run in a network namespace of their own with only loopback (unshare -n),
# so the webhook URLs and mail hosts the fuzzer makes up are never contacted. PostgreSQL is reached
# through its Unix socket (socat forwards a loopback port to it inside the namespace).
# Token-killing operations (DELETE /tokens/{id}, PATCH /agents/{id}, POST /auth/logout) run last.
# Environment: CARGO_TARGET_DIR, SWITCHBOARD_TOOLS_DIR, SWITCHBOARD_BIN (default: the debug build),
# SCHEMATHESIS_EXAMPLES, SCHEMATHESIS_SEED, SCHEMATHESIS_WORKERS.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
SCHEMATHESIS_VERSION=4.32.5
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchboard-target}"
TOOLS="${SWITCHBOARD_TOOLS_DIR:-/var/tmp/switchboard-tools}"
DB="${1:-sqlite}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-5}"
WORKERS="${SCHEMATHESIS_WORKERS:-1}"

if [ -z "${SB_SCHEMATHESIS_INSIDE:-}" ]; then
  # Outside the namespace: install, build, make the database, then run the rest inside.
  venv="$TOOLS/venv"
  mkdir -p "$TOOLS"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS_BIN="$venv/bin/schemathesis"
  if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    cargo build --quiet --bin switchboard
    export SWITCHBOARD_BIN="$CARGO_TARGET_DIR/debug/switchboard"
  fi
  export SB_SCHEMATHESIS_INSIDE=1
  if [ "$DB" = sqlite ]; then
    exec unshare -n bash "$0" "$@"
  fi
  # PostgreSQL: a fresh database, reached inside the namespace through the server's Unix socket.
  command -v socat >/dev/null || { echo "schemathesis on PostgreSQL needs socat (apt-get install socat)" >&2; exit 1; }
  dbname="schemathesis_$$"
  psql "$DB" -Atqc "create database $dbname" >/dev/null
  trap 'psql "$DB" -Atqc "drop database if exists $dbname with (force)" >/dev/null 2>&1 || true' EXIT
  pg_port="$(psql "$DB" -Atqc 'show port')"
  pg_sock_dir="$(psql "$DB" -Atqc 'show unix_socket_directories' | cut -d, -f1 | xargs)"
  export SB_PG_SOCKET="$pg_sock_dir/.s.PGSQL.$pg_port" SB_PG_PORT="$pg_port"
  export SB_PG_URL="$(printf '%s' "$DB" | sed -E "s#^(postgres(ql)?://[^/]*)/.*#\1/$dbname#")"
  unshare -n bash "$0" "$@"
  exit $?
fi

# ----- inside the namespace -----
ip link set lo up
work="$(mktemp -d /tmp/switchboard-schemathesis.XXXXXX)"
server_pid=""
forward_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$forward_pid" ] && kill "$forward_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$DB" = sqlite ]; then
  backend=SQLite
  unset DATABASE_URL
else
  backend=PostgreSQL
  socat "TCP-LISTEN:$SB_PG_PORT,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$SB_PG_SOCKET" &
  forward_pid=$!
  export DATABASE_URL="$SB_PG_URL"
  # socat listens a moment after it starts; on a loaded machine `admin create` below could
  # otherwise connect first and fail ("error connecting to server" — it ended one CI run).
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SB_PG_PORT") 2>/dev/null && break
    sleep 0.1
  done
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export SWITCHBOARD_DATA_DIR="$work/data" SWITCHBOARD_BIND="127.0.0.1:$port" SWITCHBOARD_LOG=warn
mkdir -p "$SWITCHBOARD_DATA_DIR"

"$SWITCHBOARD_BIN" admin create --email root@example.com --password "schemathesis password" --name Root >/dev/null
admin_token="$("$SWITCHBOARD_BIN" token create --email root@example.com --name schemathesis | tail -n 1)"
"$SWITCHBOARD_BIN" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }

api() { # method path [json] -> prints the body; fails on a non-2xx answer
  local args=(-sS --fail-with-body -X "$1" -H "Authorization: Bearer $admin_token" "$base/api/v1$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data "$3")
  curl "${args[@]}"
}
id_of() { jq -r "${1:-.id}"; }

# Rows for the ids in paths: a team, a custom channel with two conversations, an agent with access to
# it, a custom status, a mailbox (pointing at a closed loopback port), an attachment.
team="$(api POST /teams '{"name": "Support"}' | id_of)"
channel="$(api POST /custom-channels '{"name": "Web chat", "webhook_url": "http://127.0.0.1:9/hook", "type": "async"}' | id_of)"
agent="$(api POST /agents "{\"email\": \"agent@example.com\", \"name\": \"Agent\", \"role\": \"agent\", \"channel_ids\": [$channel]}" | id_of)"
api PUT "/teams/$team/members" "{\"agent_ids\": [$agent]}" >/dev/null
agent_token="$(api POST /tokens "{\"name\": \"schemathesis\", \"agent_id\": $agent}" | id_of .token)"
for who in 1 2; do
  api POST "/custom-channels/$channel/inbound" "{\"user_custom_id\": \"customer-$who\", \"content\": \"hello $who\"}" >/dev/null
done
api POST /statuses '{"key": "on_hold", "name": "On hold", "base": "pending"}' >/dev/null
api POST /email-channels '{"name": "Box", "protocol": "imap", "host": "127.0.0.1", "port": 9, "tls": "none",
  "username": "u", "password": "p", "poll_interval_s": 300,
  "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none", "from_address": "box@example.com"}}' >/dev/null
curl -fsS -X POST -H "Authorization: Bearer $admin_token" -H 'Content-Type: text/plain' --data 'hello' \
  "$base/api/v1/attachments?file_name=hello.txt" >/dev/null

# Operations that may revoke or demote the token in use run after the others.
last=(--include-operation-id tokens_delete --include-operation-id agents_update --include-operation-id auth_logout)
not_last=(--exclude-operation-id tokens_delete --exclude-operation-id agents_update --exclude-operation-id auth_logout)
passed=0
failed=0
status=0
run() { # name token filter...
  local name="$1" token="$2"
  shift 2
  local out="$work/$name.txt"
  local seed=()
  [ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
  local rc=0
  "$SCHEMATHESIS_BIN" run "$base/api/openapi.json" --no-color \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$EXAMPLES" --workers "$WORKERS" --phases examples,coverage,fuzzing \
    --generation-database none --suppress-health-check all --request-timeout 30 \
    --report junit --report-junit-path "$work/$name.xml" "${seed[@]}" \
    -H "Authorization: Bearer $token" "$@" >"$out" 2>&1 || rc=$?
  local tests fails errors skipped
  read -r tests fails errors skipped < <(python3 - "$work/$name.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 0, 1, 0); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for suite in suites:
    for case in suite.findall("testcase"):
        t += 1
        f += case.find("failure") is not None
        e += case.find("error") is not None
        s += case.find("skipped") is not None
print(t, f, e, s)
PY
  )
  local bad=$((fails + errors))
  if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then bad=1; fi
  passed=$((passed + tests - fails - errors - skipped))
  failed=$((failed + bad))
  # schemathesis' own summary lines are left out: the test command counts "N passed" lines.
  if [ "$bad" != 0 ]; then
    status=1
    echo "--- $name ($backend): schemathesis found problems (exit $rc):"
    grep -Ev '[0-9]+ (passed|failed)' "$out" | sed -n '/\(FAILURES\|ERRORS\) =/,$p' | head -n 400
  fi
  echo "$name ($backend): $tests operations, $((tests - fails - errors - skipped)) ok, $fails failing, $errors errors, $skipped skipped"
  grep -E '^ *Operations:' "$out" | sed -E "s/ passed/ ok/g; s/ failed/ failing/g; s/^ */  $name: /" || true
}

run admin "$admin_token" "${not_last[@]}"
run agent "$agent_token" "${not_last[@]}"
run agent-last "$agent_token" "${last[@]}"
run admin-last "$admin_token" "${last[@]}"
if grep -q "internal error" "$work/server.log"; then
  echo "--- the server logged internal errors:"
  grep -A5 "internal error" "$work/server.log" | head -n 60
  status=1
  failed=$((failed + 1))
fi
echo "schemathesis: $passed passed, $failed failed"
exit "$status"
