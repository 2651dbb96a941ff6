#!/usr/bin/env bash
# Builds and runs every test project. Tests start their own servers on free 127.0.0.1 ports.
set -euo pipefail
cd "$(dirname "$0")"

# The Redis tests need redis-server and redis-cli (Debian package redis-server).
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "Installing redis-server (provides redis-cli)..."
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server
fi

dotnet build ClusterSession.slnx -v q
dotnet test ClusterSession.slnx --no-build "$@"
