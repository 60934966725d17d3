#!/usr/bin/env bash
# Real MCP servers for george-mcp's tests (george-mcp/tests/): from npm,
# @modelcontextprotocol/server-everything and server-filesystem (pinned in
# scripts/mcp-servers/package.json and package-lock.json), and from PyPI, mcp-server-time
# and mcp-server-git (pinned with their dependencies in scripts/mcp-servers/requirements.txt)
# in a virtual environment. Installed into a per-machine cache keyed by a hash of those
# pin files, so only the first run downloads.
#
# On success prints the cache directory as the last line of stdout and exits 0 (the tests
# read it as GEORGE_TEST_MCP_DIR: node_modules/.bin/mcp-server-everything,
# node_modules/.bin/mcp-server-filesystem, venv/bin/mcp-server-time, venv/bin/mcp-server-git);
# progress goes to stderr. Exits non-zero, after saying why, when something outside the
# tests is missing (no Node.js 18+, no python3 with venv, no registry): the caller
# (.ci/run) then leaves GEORGE_TEST_MCP_DIR unset and the tests skip loudly.
#
#   GEORGE_MCP_CACHE   the cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/george-ci)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "mcp-servers-setup: $*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "no node/npm on PATH (Node.js 18 or later is needed)"
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  say "no python3 on PATH (3.10 or later is needed)"
  exit 1
fi

pins=scripts/mcp-servers
# The key covers the pins and the interpreter the venv is made with (a venv does not
# survive a change of Python).
key=$( (cat "$pins/package.json" "$pins/package-lock.json" "$pins/requirements.txt"; \
  command -v python3; python3 -c 'import sys; print(sys.version)') | sha256sum | cut -c1-12)
cache_root=${GEORGE_MCP_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/george-ci}
dir="$cache_root/mcp-$key"

if [ -f "$dir/.installed" ] && [ -x "$dir/node_modules/.bin/mcp-server-everything" ] \
  && [ -x "$dir/venv/bin/mcp-server-time" ]; then
  say "cached: $dir"
  echo "$dir"
  exit 0
fi

# Install into a fresh directory, then rename it into place: a run interrupted half-way
# leaves no half-filled cache behind. The venv is made at its final path (venvs hard-code
# it), so it is built after the rename of the npm part.
say "installing the MCP servers into $dir (npm ci, pip)"
mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.mcp-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$pins/package.json" "$pins/package-lock.json" "$tmp/"
if ! (cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
  say "npm ci failed (no registry reachable?)"
  exit 1
fi
rm -rf "$dir"
mv "$tmp" "$dir"
trap 'rm -rf "$dir"' EXIT
if ! python3 -m venv "$dir/venv" >&2; then
  say "python3 -m venv failed (Debian: apt-get install python3-venv)"
  exit 1
fi
if ! "$dir/venv/bin/pip" install -q --disable-pip-version-check -r "$pins/requirements.txt" >&2; then
  say "pip install failed (no registry reachable?)"
  exit 1
fi
touch "$dir/.installed"
trap - EXIT
say "installed: $dir"
echo "$dir"
