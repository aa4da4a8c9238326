package rules

import "math"

// Entropy returns the Shannon entropy of b in bits per byte.
func Entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, k := range counts {
		if k == 0 {
			continue
		}
		p := float64(k) / n
		h -= p * math.Log2(p)
	}
	return h
}
