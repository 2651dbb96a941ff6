#!/usr/bin/env bash
# Issue 20's attack in script form: a reader of the store (a replica, a backup, a monitoring user) against the
# ClusterDemo. Three demo users sign in with cookie authentication and write a value each; then the attacker dumps
# the store, replays every token-shaped string of the dump as the .ClusterSession cookie (and as the auth cookie)
# and counts takeovers. The tests that check this are tests/ClusterSession.Upgrade.Tests/StoreReaderTests.cs.
#
#   eng/store-reader-attack.sh                      a redis-server of its own on 127.0.0.1 (redis-server, redis-cli)
#   eng/store-reader-attack.sh --postgres "<conn>"  an existing PostgreSQL, read with pg_dump --data-only
#                                                   (conn as libpq key=value: host=127.0.0.1 port=5432 user=postgres dbname=x)
# Needs the built demo: dotnet build samples/ClusterDemo -c Release. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

demo_dll="samples/ClusterDemo/bin/${CONFIGURATION:-Release}/net10.0/ClusterDemo.dll"
[[ -f "$demo_dll" ]] || { echo "Build the demo first: dotnet build samples/ClusterDemo -c ${CONFIGURATION:-Release}" >&2; exit 2; }
work="$(mktemp -d /tmp/cs-store-reader-XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
until_ok() { # until_ok <what> <command...>: the command succeeds, within 60 s
  local what="$1"; shift
  for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "Timed out waiting for $what" >&2; exit 1
}

if [[ "${1:-}" == "--postgres" ]]; then
  conn="$2"
  npgsql="$(tr ' ' '\n' <<<"$conn" | sed 's/^host=/Host=/; s/^port=/Port=/; s/^user=/Username=/; s/^dbname=/Database=/; s/^password=/Password=/' | paste -sd';')"
  store=(--store postgres --postgres "$npgsql")
  pg_dump="$(ls /usr/lib/postgresql/*/bin/pg_dump | sort -V | tail -n 1)"
  dump() { "$pg_dump" --data-only "$conn"; }
  key_names() { :; }
else
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  pids+=($!)
  until_ok "redis-server" redis-cli -p "$redis_port" ping
  store=(--store redis --redis "127.0.0.1:$redis_port")
  key_names() { redis-cli -p "$redis_port" --scan; }
  dump() { # every key, then every value by its type
    redis-cli -p "$redis_port" --scan | while IFS= read -r key; do
      echo "$key"
      case "$(redis-cli -p "$redis_port" type "$key")" in
        string) redis-cli -p "$redis_port" get "$key" ;;
        hash) redis-cli -p "$redis_port" hgetall "$key" ;;
        list) redis-cli -p "$redis_port" lrange "$key" 0 -1 ;;
        set) redis-cli -p "$redis_port" smembers "$key" ;;
        zset) redis-cli -p "$redis_port" zrange "$key" 0 -1 ;;
      esac
    done
  }
fi

port="$(free_port)"
HOME="$work" dotnet "$demo_dll" --port "$port" --nodes 1 "${store[@]}" >"$work/demo.log" 2>&1 &
pids+=($!)
node="http://127.0.0.1:$((port + 1))"
until_ok "the demo" grep -q '^ClusterDemo ready: ' "$work/demo.log"

# The victims: alice, bob and carol sign in (curl's cookie jar is the browser) and each writes a private value.
for user in alice bob carol; do
  jar="$work/$user.jar"
  curl -fsS -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d "{\"user\":\"$user\",\"password\":\"demo\"}" "$node/api/login" >/dev/null
  curl -fsS -c "$jar" -b "$jar" -X PUT -H 'Content-Type: text/plain' --data "private note of $user" "$node/api/attributes/note" >/dev/null
done

# The attacker: read-only access to the store, and the demo's address.
dump >"$work/dump.txt"
grep -aoE '[A-Za-z0-9_-]{16,}|[0-9A-Fa-f]{32,}' "$work/dump.txt" | sort -u >"$work/tokens.txt"
tried=0 takeovers=0
taken=()
while IFS= read -r token; do
  tried=$((tried + 1))
  body="$(curl -sS -H "Cookie: .ClusterSession=$token" "$node/api/attributes")"
  for user in alice bob carol; do
    if [[ "$body" == *"private note of $user"* ]]; then takeovers=$((takeovers + 1)); taken+=("$user"); fi
  done
  for cookie in ".ClusterSession=$token" ".ClusterDemo.Auth=$token"; do
    status="$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$node/api/me")"
    if [[ "$status" == 200 ]]; then takeovers=$((takeovers + 1)); fi
  done
done <"$work/tokens.txt"
names="$(key_names | grep -cE '(^|[^A-Za-z0-9])(alice|bob|carol)([^A-Za-z0-9]|$)' || true)"

victims="$(printf '%s\n' "${taken[@]}" | sort -u | grep -c . || true)"
echo "store ${store[1]}: replayed $tried tokens, $takeovers takeovers ($victims of 3 users' data read); key names naming a user: ${names:-0}"
