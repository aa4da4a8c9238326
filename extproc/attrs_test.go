package extproc

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

func TestAttrSetsCache(t *testing.T) {
	var c attrSets
	entries := func() int {
		n := 0
		c.m.Range(func(any, any) bool { n++; return true })
		return n
	}
	for _, tc := range []struct {
		kv   []string
		want int // entries after the get
	}{
		{[]string{"status", "200", "provider", "anthropic"}, 1},
		{[]string{"status", "200", "provider", "anthropic"}, 1}, // cached
		{[]string{"status", "20", "provider", "0anthropic"}, 2}, // no collision across labels
		{[]string{"kind", "reset"}, 3},
	} {
		o := c.get(tc.kv...)
		if n := entries(); n != tc.want {
			t.Errorf("after get(%q): %d entries, want %d", tc.kv, n, tc.want)
		}
		cfg := metric.NewAddConfig([]metric.AddOption{o})
		set := cfg.Attributes()
		for i := 0; i < len(tc.kv); i += 2 {
			if v, ok := set.Value(attribute.Key(tc.kv[i])); !ok || v.AsString() != tc.kv[i+1] {
				t.Errorf("get(%q): %s = %v, want %s", tc.kv, tc.kv[i], v.AsString(), tc.kv[i+1])
			}
		}
	}
}
