package benchkit

import (
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// ds; ds is sorted in place.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
