#!/usr/bin/env bash
# The one test command. Installs the servers the tests start (when missing), builds the solution
# once, runs every test project listed in ClusterSession.slnx, prints one result line per project
# and, as the very last line, one summary over all of them: "N passed, N failed, N skipped".
# Exits non-zero on any failure: a failed test, a build failure, a crashed or hung test host,
# or a test project that produced no results.
#
# Environment: CONFIGURATION (default Release), TEST_RESULTS_DIR (default artifacts/test-results).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

configuration="${CONFIGURATION:-Release}"
results_dir="${TEST_RESULTS_DIR:-artifacts/test-results}"

# ---- 1. servers the tests start: redis-server/redis-cli, PostgreSQL, chromium, faketime; promtool (Debian packages) ----
missing=()
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v faketime >/dev/null 2>&1; then
  missing+=(faketime) # the clock-skew tests run app hosts with their clocks off
fi
if ! command -v promtool >/dev/null 2>&1; then
  missing+=(prometheus) # promtool checks the shipped alert rules (eng/observability)
fi

if ((${#missing[@]} > 0)); then
  if [[ "$(id -u)" == "0" ]]; then
    echo "Installing missing test dependencies: ${missing[*]}"
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; }; then
      echo "INSTALL FAILED for: ${missing[*]} (counted as 1 failure; no tests ran)"
      echo "0 passed, 1 failed"
      exit 1
    fi
  else
    echo "Missing test dependencies: ${missing[*]}. Install them, then run ./test.sh again:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# ---- 2. build once: the solution, and the previous release the upgrade tests run beside it ----
if ! dotnet build ClusterSession.slnx -c "$configuration" -v q -nologo; then
  echo "BUILD FAILED (counted as 1 failure; no tests ran)"
  echo "0 passed, 1 failed"
  exit 1
fi
# eng/baseline-release.txt names the releases (the previous one first); each built once per clone under artifacts/baseline/ (a no-op when cached).
if ! ./eng/build-baseline.sh >/dev/null; then
  echo "BASELINE BUILD FAILED: the previous release could not be built (counted as 1 failure; no tests ran)"
  echo "0 passed, 1 failed"
  exit 1
fi

# ---- 3. run each test project of the solution, one trx file per project ----
mapfile -t projects < <(grep -o 'Path="[^"]*\.Tests\.csproj"' ClusterSession.slnx | sed 's/^Path="//; s/"$//')
if ((${#projects[@]} == 0)); then
  echo "No test projects (*.Tests.csproj) found in ClusterSession.slnx"
  echo "0 passed, 1 failed"
  exit 1
fi

rm -rf "$results_dir"
mkdir -p "$results_dir"
declare -A exit_codes=()
for project in "${projects[@]}"; do
  name="$(basename "$project" .csproj)"
  echo "=== $name"
  rc=0
  # A hung test is killed after 5 minutes and reported, instead of stalling the run.
  dotnet test "$project" -c "$configuration" --no-build -v q -nologo \
    --logger "trx;LogFileName=$name.trx" --results-directory "$results_dir" \
    --blame-hang --blame-hang-timeout 5m --blame-hang-dump-type none || rc=$?
  exit_codes[$name]=$rc
done

# ---- 4. the shipped Prometheus alert rules: syntax (promtool check rules) and behaviour (promtool test rules) ----
# Each promtool command counts as one test in the summary.
promtool_results=()
for check in "check rules eng/observability/alerts.yml" "test rules eng/observability/alerts.test.yml"; do
  echo "=== promtool $check"
  # shellcheck disable=SC2086 # the check is two words and a path
  if promtool $check; then
    promtool_results+=("passed:promtool $check")
  else
    promtool_results+=("failed:promtool $check")
  fi
done

# ---- 5. per-project results from the trx counters, then the summary line ----
counter() { # counter "<Counters .../>" name -> the attribute's number (0 when absent)
  local value
  value="$(sed -n "s/.* $2=\"\([0-9]*\)\".*/\1/p" <<<"$1")"
  echo "${value:-0}"
}

total_passed=0 total_failed=0 total_skipped=0
report=()
for project in "${projects[@]}"; do
  name="$(basename "$project" .csproj)"
  trx="$results_dir/$name.trx"
  rc="${exit_codes[$name]}"
  if [[ ! -f "$trx" ]]; then
    report+=("$name: no results (exit code $rc; the test host crashed or did not start), counted as 1 failure")
    total_failed=$((total_failed + 1))
    continue
  fi

  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1 || true)"
  passed="$(counter "$counters" passed)"
  failed=$(($(counter "$counters" failed) + $(counter "$counters" error) + $(counter "$counters" timeout) + $(counter "$counters" aborted)))
  skipped="$(counter "$counters" notExecuted)"
  line="$name: $passed passed, $failed failed, $skipped skipped"
  if ((rc != 0 && failed == 0)); then
    # Results exist but the run did not finish cleanly: a host crash or hang after some tests ran.
    failed=1
    line="$line (dotnet test exited with $rc: test host crashed, hung or aborted; counted as 1 failure)"
  fi
  report+=("$line")
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
done

for result in "${promtool_results[@]}"; do
  if [[ $result == passed:* ]]; then
    report+=("${result#passed:}: 1 passed, 0 failed, 0 skipped")
    total_passed=$((total_passed + 1))
  else
    report+=("${result#failed:}: 0 passed, 1 failed, 0 skipped")
    total_failed=$((total_failed + 1))
  fi
done

echo
echo "=== Results (trx files in $results_dir)"
printf '%s\n' "${report[@]}"
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
((total_failed == 0))
