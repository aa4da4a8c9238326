#!/usr/bin/env bash
# Install the pinned Claude Code release for the end-to-end test that runs the
# real client through the gateway (e2e/claudecode_test.go, TestClaudeCode).
#
# It installs @anthropic-ai/claude-code from the npm registry into a cache
# directory outside the repository, once: a later run finds the binary and
# skips the install. It prints the path of the native `claude` binary, and
# only that, on stdout (npm's output goes to stderr), so that
#
#   export TAKUMO_E2E_CLAUDE="$(scripts/install-claude-code.sh)"
#
# is all a developer or CI needs before `make test`.
#
# The package ships a small Node wrapper and, as an optional dependency per
# platform (@anthropic-ai/claude-code-linux-x64 and so on), the native binary.
# Install scripts are not run (--ignore-scripts): the wrapper's postinstall
# only links the native binary into the wrapper's bin/, and the test runs the
# binary directly, so Node's version does not matter beyond running npm (the
# package asks for Node 22; npm only warns about that).
#
# Environment:
#   CLAUDE_CODE_VERSION  the version to install (default 2.1.332)
#   CLAUDE_CODE_DIR      where to install it (default
#                        ${XDG_CACHE_HOME:-$HOME/.cache}/takumo-aegis/claude-code-$CLAUDE_CODE_VERSION)
#
# Usage: scripts/install-claude-code.sh
set -euo pipefail

CLAUDE_CODE_VERSION=${CLAUDE_CODE_VERSION:-2.1.332}
CLAUDE_CODE_DIR=${CLAUDE_CODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/takumo-aegis/claude-code-$CLAUDE_CODE_VERSION}

die() { echo "install-claude-code: $*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm is not on PATH; install Node.js and npm first (Debian: apt-get install nodejs npm)"
command -v node >/dev/null 2>&1 || die "node is not on PATH; install Node.js first (Debian: apt-get install nodejs)"

# The platform package npm picks for this machine, as the wrapper names it.
case "$(node -p 'process.platform + "-" + process.arch')" in
  linux-x64) platform=linux-x64 ;;
  linux-arm64) platform=linux-arm64 ;;
  darwin-x64) platform=darwin-x64 ;;
  darwin-arm64) platform=darwin-arm64 ;;
  *) die "no Claude Code binary for $(node -p 'process.platform + "-" + process.arch')" ;;
esac
# musl-based Linux gets its own package.
if [[ $platform == linux-* ]] && ! node -e 'process.exit(process.report.getReport().header.glibcVersionRuntime ? 0 : 1)' 2>/dev/null; then
  platform=$platform-musl
fi

bin=$CLAUDE_CODE_DIR/node_modules/@anthropic-ai/claude-code-$platform/claude

# installed reports whether $bin is there and is the pinned version.
installed() {
  [[ -x $bin ]] || return 1
  local v
  v=$(DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 "$bin" --version 2>/dev/null) || return 1
  [[ $v == "$CLAUDE_CODE_VERSION "* ]]
}

if ! installed; then
  echo "install-claude-code: installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION into $CLAUDE_CODE_DIR" >&2
  parent=$(dirname "$CLAUDE_CODE_DIR")
  mkdir -p "$parent"
  # Install beside the target, then move it into place, so that an
  # interrupted install never looks like a finished one.
  tmp=$(mktemp -d "$parent/.claude-code-install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf '{"name":"takumo-aegis-claude-code","private":true}\n' >"$tmp/package.json"
  (
    cd "$tmp"
    npm install --ignore-scripts --no-audit --no-fund --no-save --loglevel=error \
      "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2
  ) || die "npm install @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION failed"
  [[ -x $tmp/node_modules/@anthropic-ai/claude-code-$platform/claude ]] ||
    die "npm installed no native binary (@anthropic-ai/claude-code-$platform); were optional dependencies skipped (npm --omit=optional)?"
  rm -rf "$CLAUDE_CODE_DIR"
  mv "$tmp" "$CLAUDE_CODE_DIR"
  trap - EXIT
  installed || die "$bin does not report version $CLAUDE_CODE_VERSION"
fi

echo "$bin"
