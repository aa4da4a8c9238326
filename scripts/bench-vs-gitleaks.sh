#!/usr/bin/env bash
# Compare the scan throughput of takumo-aegis with gitleaks on the same tree
# of real source code, in one run on one machine (DESIGN §12: benchmarks run
# side by side with a baseline). Target: ours at least 50x gitleaks.
#
# What it does:
#   1. builds our CLI from this checkout;
#   2. installs gitleaks (pinned) into a temporary GOBIN, outside our go.mod;
#   3. copies about TREE_MB megabytes of *.go files from $(go env GOROOT)/src;
#   4. times both scanners on that tree (hyperfine when installed, else the
#      best of RUNS timed runs after one warm-up) and prints MB/s and the ratio.
#
# Environment:
#   TREE_MB            size of the source tree in MB (default 20)
#   RUNS               timed runs per tool (default 3)
#   GITLEAKS_VERSION   gitleaks version to install (default v8.30.1)
#   GITLEAKS_BIN       use this gitleaks binary instead of installing one
#   KEEP_WORKDIR=1     keep the temporary directory for inspection
#
# Usage: scripts/bench-vs-gitleaks.sh
set -euo pipefail

TREE_MB=${TREE_MB:-20}
RUNS=${RUNS:-3}
GITLEAKS_VERSION=${GITLEAKS_VERSION:-v8.30.1}

die() { echo "bench-vs-gitleaks: $*" >&2; exit 1; }

[[ "$TREE_MB" =~ ^[1-9][0-9]*$ ]] || die "TREE_MB must be a positive integer, got '$TREE_MB'"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
command -v go >/dev/null || die "go is not on PATH"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/aegis-bench.XXXXXX")
cleanup() {
	if [[ "${KEEP_WORKDIR:-}" == 1 ]]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/tree"

# 1. Our CLI.
echo "building takumo-aegis..." >&2
(cd "$repo_root" && go build -o "$work/bin/takumo-aegis" ./cmd/takumo-aegis)
ours="$work/bin/takumo-aegis"

# 2. gitleaks, pinned, built with the same Go toolchain.
if [[ -n "${GITLEAKS_BIN:-}" ]]; then
	[[ -x "$GITLEAKS_BIN" ]] || die "GITLEAKS_BIN=$GITLEAKS_BIN is not executable"
	gitleaks=$GITLEAKS_BIN
else
	echo "installing gitleaks $GITLEAKS_VERSION (first time: a few minutes)..." >&2
	(cd "$work" && GOBIN="$work/bin" GOFLAGS=-mod=mod go install "github.com/zricethezav/gitleaks/v8@${GITLEAKS_VERSION}")
	gitleaks="$work/bin/gitleaks"
fi

# 3. The tree: *.go files of GOROOT/src in path order until TREE_MB is reached.
goroot=$(go env GOROOT)
[[ -d "$goroot/src" ]] || die "no Go source tree at $goroot/src"
limit=$((TREE_MB * 1000 * 1000))
(cd "$goroot/src" && find . -type f -name '*.go' -printf '%s %P\n' | LC_ALL=C sort -k2) |
	awk -v limit="$limit" 'total < limit { total += $1; sub(/^[0-9]+ /, ""); print }' \
		>"$work/files.txt"
tar -C "$goroot/src" -cf - -T "$work/files.txt" | tar -C "$work/tree" -xf -
tree_bytes=$(find "$work/tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
tree_files=$(wc -l <"$work/files.txt")
((tree_bytes > 0)) || die "the source tree is empty"
echo "tree: $tree_files files, $tree_bytes bytes from $goroot/src" >&2

ours_cmd=("$ours" scan --format json "$work/tree")
gitleaks_cmd=("$gitleaks" dir --no-banner --exit-code 0 --report-format json --report-path "$work/gitleaks-report.json" "$work/tree")

# run_checked CMD... runs one scan with output discarded. Our scan exits 1
# when it finds secrets (GOROOT has test credentials), which is not an error;
# anything else non-zero is.
run_checked() {
	local rc=0
	"$@" >/dev/null 2>"$work/stderr" || rc=$?
	if ((rc > 1)); then
		cat "$work/stderr" >&2
		die "$1 exited with status $rc"
	fi
}

# best_ns CMD... prints the best wall time of RUNS runs, in nanoseconds.
best_ns() {
	local best=0 i start end
	run_checked "$@" # warm-up: page cache, first-run effects
	for ((i = 0; i < RUNS; i++)); do
		start=$(date +%s%N)
		run_checked "$@"
		end=$(date +%s%N)
		if ((best == 0 || end - start < best)); then
			best=$((end - start))
		fi
	done
	echo "$best"
}

# hyperfine_ns CMD... does the same with hyperfine (min of RUNS runs).
hyperfine_ns() {
	local cmd
	printf -v cmd '%q ' "$@"
	hyperfine --style none --warmup 1 --runs "$RUNS" --ignore-failure \
		--export-json "$work/hf.json" "$cmd >/dev/null 2>&1" >&2
	python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["results"][0]["min"]*1e9))' "$work/hf.json"
}

timer=best_ns
if command -v hyperfine >/dev/null && command -v python3 >/dev/null; then
	timer=hyperfine_ns
	run_checked "${ours_cmd[@]}" # hyperfine ignores failures; check once here
	run_checked "${gitleaks_cmd[@]}"
fi

echo "timing takumo-aegis ($RUNS runs)..." >&2
ours_ns=$($timer "${ours_cmd[@]}")
echo "timing gitleaks ($RUNS runs)..." >&2
gitleaks_ns=$($timer "${gitleaks_cmd[@]}")

awk -v bytes="$tree_bytes" -v files="$tree_files" -v ours="$ours_ns" -v gl="$gitleaks_ns" \
	-v glv="$GITLEAKS_VERSION" -v cpus="$(nproc 2>/dev/null || echo '?')" 'BEGIN {
	mb = bytes / 1e6
	printf "tree:          %d files, %.1f MB of Go source, %s CPUs\n", files, mb, cpus
	printf "takumo-aegis:  %8.3f s  %9.1f MB/s\n", ours / 1e9, mb / (ours / 1e9)
	printf "gitleaks %s: %8.3f s  %9.1f MB/s\n", glv, gl / 1e9, mb / (gl / 1e9)
	ratio = gl / ours
	printf "ratio:         %.1fx (target >= 50x: %s)\n", ratio, ratio >= 50 ? "met" : "NOT met"
}'
