#!/usr/bin/env bash
# Install the pinned Heroku CLI (npm heroku@11.10.0) under the project, never globally:
#   .cache/heroku/node_modules/heroku/bin/run.js
# Idempotent: does nothing when that version is already there. Used by the tests
# (tests/heroku_fixtures.py), the bench and .ci/run. Needs node >= 20 and npm.
set -euo pipefail
VERSION="${HEROKU_CLI_VERSION:-11.10.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${HEROKU_CLI_PREFIX:-$ROOT/.cache/heroku}"
PKG="$PREFIX/node_modules/heroku/package.json"
if [ -f "$PKG" ] && grep -q "\"version\": \"$VERSION\"" "$PKG"; then
  echo "$PREFIX/node_modules/heroku/bin/run.js"
  exit 0
fi
command -v npm >/dev/null || { echo "install-heroku-cli: npm is not installed" >&2; exit 1; }
mkdir -p "$PREFIX"
[ -f "$PREFIX/package.json" ] || echo '{"name": "dynokernel-heroku-cli", "private": true}' > "$PREFIX/package.json"
# the npm cache stays under the project too
npm install --prefix "$PREFIX" --cache "$ROOT/.cache/npm" --no-audit --no-fund --loglevel=error \
  "heroku@$VERSION" >&2
echo "$PREFIX/node_modules/heroku/bin/run.js"
