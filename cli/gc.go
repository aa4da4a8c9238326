package cli

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// serverGCPercent is the GC target the gateway and extproc commands run
// with when the operator has not set GOGC.
//
// Every request allocates a few copies of its body that live only as long
// as the request (the gRPC frames, the decoded message, the tokenized
// reply), on top of a live heap that holds the policy and the detection
// engine. With Go's default of 100 the collector ran so often that it took
// about 15 % of the gateway's CPU under load. At 400 it runs a quarter as
// often: the quick load run of bench/run.sh went from 959 to 817 µs of
// gateway CPU per 64 KB request (bench/README.md). The price is memory: the
// heap may grow to five times the live data between collections instead of
// twice. So that a container is not killed for it, the servers also set a
// soft memory limit of 90 % of the cgroup's memory.max when there is one
// (a Kubernetes memory limit, a systemd MemoryMax) and GOMEMLIMIT is not
// set: near that limit the collector runs as often as it must. An operator
// who wants the old trade sets GOGC=100; GOGC and GOMEMLIMIT are honoured
// as Go documents them.
const serverGCPercent = 400

// tuneServerGC applies serverGCPercent unless GOGC is set, and returns a
// func that restores the previous setting (for the tests, which run
// servers inside one process).
func tuneServerGC(lookupEnv func(string) (string, bool)) (restore func()) {
	return tuneGC(lookupEnv, func() ([]byte, error) { return os.ReadFile("/sys/fs/cgroup/memory.max") })
}

func tuneGC(lookupEnv func(string) (string, bool), memoryMax func() ([]byte, error)) (restore func()) {
	restoreGC, restoreLimit := func() {}, func() {}
	if _, set := lookupEnv("GOGC"); !set {
		prev := debug.SetGCPercent(serverGCPercent)
		restoreGC = func() { debug.SetGCPercent(prev) }
	}
	if _, set := lookupEnv("GOMEMLIMIT"); !set {
		if limit, ok := softMemoryLimit(memoryMax); ok {
			prev := debug.SetMemoryLimit(limit)
			restoreLimit = func() { debug.SetMemoryLimit(prev) }
		}
	}
	return func() { restoreLimit(); restoreGC() }
}

// softMemoryLimit is 90 % of the cgroup v2 memory.max, when it is a number.
func softMemoryLimit(memoryMax func() ([]byte, error)) (int64, bool) {
	b, err := memoryMax()
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n == math.MaxInt64 { // "max": no limit
		return 0, false
	}
	return n / 10 * 9, true
}
