#!/usr/bin/env bash
# Prepares a folder to run `george serve` on the example ops repository:
#   DIR/ops          a Git repository with examples/ops-repo committed on `main`
#   DIR/tokens.toml  one admin token (its SHA-256 only; the token is printed, once)
#   DIR/george.toml  the operator's configuration (SQLite store, `grep` as a read-only
#                    command, listening on ${GEORGE_LISTEN:-127.0.0.1:8080})
# Usage: examples/serve/setup.sh DIR     (prints the token on stdout)
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
rm -rf "$dir/ops"
cp -r "$here/examples/ops-repo" "$dir/ops"
git -C "$dir/ops" init -q -b main
git -C "$dir/ops" add -A
git -C "$dir/ops" -c user.name=george-demo -c user.email=demo@example.invalid commit -q -m "ops"
token="george-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat > "$dir/tokens.toml" <<TOML
# printf %s "\$TOKEN" | sha256sum   gives the key of each token
[tokens.$hash]
user = "admin"
roles = ["admin"]
TOML
cat > "$dir/george.toml" <<TOML
[source]
path = "ops"
poll_interval_ms = 1000

[store]
sqlite = "george.db"

[commands]
programs = ["grep"]
read = ["grep"]

[http]
listen = "${GEORGE_LISTEN:-127.0.0.1:8080}"
tokens = "tokens.toml"
TOML
echo "$token"
