#!/usr/bin/env bash
# The browser test drives Debian's chromium (/usr/bin/chromium) through Playwright; Playwright never
# downloads a browser here. test.sh calls this before the demo tests; it installs chromium when missing.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "ensure-chromium: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
/usr/bin/chromium --version
