#!/usr/bin/env bash
# Regenerates PublicAPI.Unshipped.txt of every src project from the code, with the analyzer's own
# code fix (dotnet format). Run from the repo root after a deliberate public API change, then
# review the diff: it is the API change.
set -euo pipefail
for d in src/*/; do
  [[ -f $d/PublicAPI.Shipped.txt ]] || printf '#nullable enable\n' > $d/PublicAPI.Shipped.txt
  printf '#nullable enable\n' > $d/PublicAPI.Unshipped.txt
done
for d in src/*/; do
  dotnet format analyzers "$d" --diagnostics RS0016 RS0017 --severity info >/dev/null 2>&1 || true
done
for f in src/*/PublicAPI.Unshipped.txt; do
  { head -n1 "$f"; tail -n +2 "$f" | LC_ALL=C sort -u; } > "$f.tmp" && mv "$f.tmp" "$f"
done
