#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver for the browser tests (tests/test_browser.py),
# unless /usr/bin/chromium is already there. Browser downloads (playwright install, selenium
# manager) fail offline, so the tests use exactly these Debian packages.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "ci: installing chromium and chromium-driver from Debian's packages"
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver fonts-thai-tlwg >/dev/null
/usr/bin/chromium --version
