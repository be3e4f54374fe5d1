#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver from Debian (`chromium`, `chromium-driver`) for
# demo-app/tests/browser.rs. Idempotent: does nothing when both binaries are already there.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "chromium and chromedriver already installed"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver

/usr/bin/chromium --version
/usr/bin/chromedriver --version
