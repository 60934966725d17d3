#!/usr/bin/env bash
# What the dashboard's real-browser tests (george-cli/tests/dashboard_e2e.rs, driving
# e2e/dashboard.mjs) need: Debian's chromium, and the npm packages of e2e/package.json
# (playwright-core, axe-core, pinned there and in e2e/package-lock.json) installed into a
# per-machine cache keyed by their versions, so only the first run downloads.
#
# On success prints the cache directory (its node_modules/ holds the packages) as the
# last line of stdout and exits 0; progress goes to stderr. Exits non-zero, after saying
# why, when something outside the tests is missing (no Node.js 20+, no chromium, no npm
# registry): the caller (.ci/run) then leaves GEORGE_E2E_NODE_MODULES unset and the test
# skips loudly instead of failing CI.
#
#   GEORGE_E2E_CACHE   the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/george-ci)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "e2e-setup: $*" >&2; }

# Debian's chromium (playwright's own browser download cannot run here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q chromium >&2; then
      apt-get update -q >&2 && apt-get install -y -q chromium >&2 || true
    fi
  fi
  if [ ! -x /usr/bin/chromium ]; then
    say "no /usr/bin/chromium and it could not be installed (needs root and apt-get)"
    exit 1
  fi
fi

# Node.js 20 or later (playwright-core's floor) and npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "no node/npm on PATH (Node.js 20 or later is needed)"
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  say "Node.js $(node --version) is too old: playwright-core needs 20 or later"
  exit 1
fi

version() { node -p "require('./e2e/package.json').dependencies['$1']"; }
pw=$(version playwright-core)
axe=$(version axe-core)
cache_root=${GEORGE_E2E_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/george-ci}
dir="$cache_root/e2e-$pw-$axe"

if [ -f "$dir/.installed" ] && [ -f "$dir/node_modules/playwright-core/package.json" ] \
  && [ -f "$dir/node_modules/axe-core/axe.min.js" ]; then
  say "cached: $dir (playwright-core $pw, axe-core $axe)"
  echo "$dir"
  exit 0
fi

# Install into a fresh directory next to the final one, then rename it into place: a
# run interrupted half-way leaves no half-filled cache behind.
say "installing playwright-core $pw and axe-core $axe into $dir (npm ci)"
mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.e2e-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp e2e/package.json e2e/package-lock.json "$tmp/"
if ! (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
  say "npm ci failed (no registry reachable?)"
  exit 1
fi
touch "$tmp/.installed"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
say "installed: $dir"
echo "$dir"
