#!/usr/bin/env bash
# Builds a baseline release (eng/baseline-release.txt) once, for the upgrade tests to run beside the current code:
# extracts that commit's tree from this repository's history into artifacts/baseline/<commit>/source and builds its
# ClusterDemo and ClusterSession.Cli there (Release). A finished build is cached: artifacts/baseline/<commit>/built.txt
# is written last and names the two dlls ("demo=<path>", "cli=<path>", relative to the repository root); when it
# exists, nothing is done. Concurrent runs (test.sh, a test fixture) wait for each other (flock).
#
# Usage: eng/build-baseline.sh [TAG]. With a tag, builds that line of eng/baseline-release.txt; without one, every line.
# Prints the path of each built.txt, one per line. Exits non-zero with a message when the commit is not in this clone (a shallow clone)
# or the build fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

build_one() {
  local commit="$1" tag="$2"
  short="${commit:0:7}"
  dir="$root/artifacts/baseline/$short"
  built="$dir/built.txt"

  mkdir -p "$root/artifacts/baseline"
  exec 9>"$root/artifacts/baseline/$short.lock"
  flock 9

  if [[ -f "$built" ]]; then
    echo "$built"
    return 0
  fi

  if ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    echo "build-baseline: $root is not a git clone; the upgrade tests build the release $tag (commit $commit) from its history." >&2
    exit 1
  fi
  if ! git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null; then
    shallow="$(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null || echo unknown)"
    {
      echo "build-baseline: the release $tag (commit $commit, eng/baseline-release.txt) is not in this clone"
      echo "  (shallow clone: $shallow). The upgrade tests run it beside the current code and cannot run without it."
      echo "  Fetch it: git fetch --unshallow (or git fetch origin $commit, or fetch the tag $tag)."
    } >&2
    exit 1
  fi

  started=$SECONDS
  rm -rf "$dir/source"
  mkdir -p "$dir/source"
  git -C "$root" archive "$commit" | tar -x -C "$dir/source"

  # The release is built as it was; its warnings are no longer ours to fix (a newer SDK may add some).
  lines=()
  for project in samples/ClusterDemo/ClusterDemo.csproj tools/ClusterSession.Cli/ClusterSession.Cli.csproj; do
    echo "build-baseline: building $project of $tag ($short)" >&2
    dotnet build "$dir/source/$project" -c Release -v q -nologo \
      -p:TreatWarningsAsErrors=false -p:EnforceCodeStyleInBuild=false >&2
    target="$(dotnet msbuild "$dir/source/$project" -p:Configuration=Release -getProperty:TargetPath)"
    [[ -f "$target" ]] || { echo "build-baseline: $target is missing after the build" >&2; exit 1; }
    lines+=("$(basename "$project" .csproj)=${target#"$root/"}")
  done

  {
    echo "# $tag ($commit), built in $((SECONDS - started)) s"
    printf '%s\n' "${lines[@]}" | sed 's/^ClusterDemo=/demo=/; s/^ClusterSession.Cli=/cli=/'
  } >"$built.tmp"
  mv "$built.tmp" "$built"
  echo "$built"

}

wanted="${1:-}"
found=0
while read -r commit tag; do
  if [[ -z "$wanted" || "$wanted" == "$tag" || "$wanted" == "$commit" ]]; then
    found=1
    ( build_one "$commit" "$tag" ) </dev/null
  fi
done < <(grep -v '^#' "$root/eng/baseline-release.txt" | grep -v '^[[:space:]]*$')
if ((found == 0)); then
  echo "build-baseline: no line of eng/baseline-release.txt names ${wanted:-a release}." >&2
  exit 1
fi
