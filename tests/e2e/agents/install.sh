#!/bin/sh
# Installs the agents that tests/agents.rs drives (Claude Code, Codex CLI, Gemini CLI), at the
# exact versions of package-lock.json next to this script, into DIR (default target/agents).
# Idempotent: does nothing when DIR already holds this lock file and the three binaries.
# The test suite runs it itself when LLMTAP_E2E=1 and the agents are missing or outdated.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-"$here/../../../target/agents"}
mkdir -p "$dir"
if cmp -s "$here/package-lock.json" "$dir/package-lock.json" \
  && [ -e "$dir/node_modules/.bin/claude" ] \
  && [ -e "$dir/node_modules/.bin/codex" ] \
  && [ -e "$dir/node_modules/.bin/gemini" ]; then
  echo "agents already installed in $dir"
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# npm ci: exactly the lock file, from npm's cache when it has the tarballs. Install scripts
# must run: Claude Code's postinstall puts its native binary in place.
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
"$dir/node_modules/.bin/claude" --version
"$dir/node_modules/.bin/codex" --version
"$dir/node_modules/.bin/gemini" --version
