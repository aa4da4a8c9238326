package extproc

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// attrSets caches metric options for label combinations already seen:
// metric.WithAttributes builds and sorts a new attribute.Set on every call,
// which cost more than the counter update itself on the request path.
// Labels here come from bounded sets (status codes, provider names,
// fixed kinds), so the cache stays small.
type attrSets struct {
	m sync.Map // string -> metric.MeasurementOption
}

// get returns the option for the attributes kv (key, value, key, value…).
func (c *attrSets) get(kv ...string) metric.MeasurementOption {
	key := kv[0]
	for _, s := range kv[1:] {
		key += "\x00" + s
	}
	if o, ok := c.m.Load(key); ok {
		return o.(metric.MeasurementOption) //nolint:forcetypeassert // only this type is stored
	}
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	o := metric.WithAttributeSet(attribute.NewSet(attrs...))
	c.m.Store(key, o)
	return o
}
