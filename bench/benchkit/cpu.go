package benchkit

import (
	"syscall"
	"time"
)

// CPUTime returns the user+system CPU time this process has used. On a
// shared machine it is the steadier measure: wall time depends on what
// else runs, CPU time per request much less.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
