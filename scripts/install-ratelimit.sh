#!/usr/bin/env bash
# Build the pinned envoyproxy/ratelimit service for the end-to-end test that
# runs two gateway replicas against it (e2e/ratelimitservice_test.go,
# TestRateLimitServiceSharedByReplicas).
#
# It runs `go install` of the service's command outside our go.mod (the
# service has its own module graph; nothing of it enters go.mod or go.sum)
# into a cache directory, once: a later run finds the binary and skips the
# build. It prints the path of the binary, and only that, on stdout (go's
# output goes to stderr), so that
#
#   export TAKUMO_E2E_RATELIMIT="$(scripts/install-ratelimit.sh)"
#   export TAKUMO_E2E_REDIS=127.0.0.1:6379
#
# is all a developer or CI needs before `make test` (the test also needs a
# Redis at TAKUMO_E2E_REDIS; it only touches keys under a prefix of its own).
#
# The build uses the Go on PATH (the pinned commit builds with Go 1.26) and
# module mode whatever the caller's GOFLAGS say (-mod=vendor or -mod=readonly
# would refuse a module outside a main module). GOTOOLCHAIN=local keeps go
# from downloading another toolchain on its own.
#
# Environment:
#   RATELIMIT_VERSION  the module version to build (default the pinned
#                      pseudo-version below)
#   RATELIMIT_DIR      where to put it (default
#                      ${XDG_CACHE_HOME:-$HOME/.cache}/takumo-aegis/ratelimit-$RATELIMIT_VERSION)
#
# Usage: scripts/install-ratelimit.sh
set -euo pipefail

RATELIMIT_VERSION=${RATELIMIT_VERSION:-v1.4.1-0.20260122083618-3fb702589d36}
RATELIMIT_DIR=${RATELIMIT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/takumo-aegis/ratelimit-$RATELIMIT_VERSION}
pkg=github.com/envoyproxy/ratelimit/src/service_cmd

die() { echo "install-ratelimit: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH"

bin=$RATELIMIT_DIR/service_cmd

# installed reports whether $bin is there and was built from the pinned
# version (go records the main module's version in the binary).
installed() {
  [[ -x $bin ]] || return 1
  local v
  v=$(go version -m "$bin" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/envoyproxy/ratelimit" { print $3 }') || return 1
  [[ $v == "$RATELIMIT_VERSION" ]]
}

if ! installed; then
  echo "install-ratelimit: building $pkg@$RATELIMIT_VERSION into $RATELIMIT_DIR" >&2
  parent=$(dirname "$RATELIMIT_DIR")
  mkdir -p "$parent"
  # Build beside the target, then move it into place, so that an
  # interrupted build never looks like a finished one.
  tmp=$(mktemp -d "$parent/.ratelimit-install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (
    # Outside any module, so our go.mod plays no part.
    cd "$tmp"
    GOBIN="$tmp" GOFLAGS=-mod=mod GOTOOLCHAIN=local GO111MODULE=on CGO_ENABLED=0 \
      go install "$pkg@$RATELIMIT_VERSION" >&2
  ) || die "go install $pkg@$RATELIMIT_VERSION failed"
  [[ -x $tmp/service_cmd ]] || die "go install produced no service_cmd binary"
  rm -rf "$RATELIMIT_DIR"
  mkdir -p "$RATELIMIT_DIR"
  mv "$tmp/service_cmd" "$bin"
  rm -rf "$tmp"
  trap - EXIT
  installed || die "$bin does not carry version $RATELIMIT_VERSION"
fi

echo "$bin"
