package extproc

import (
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestMetadataCarriesPlanRateLimits: the takumo.aegis metadata carries the
// rate limits the policy decided for the org's plan (policy/data/plans.yaml),
// after the body and, for bodiless requests, at the headers.
func TestMetadataCarriesPlanRateLimits(t *testing.T) {
	h, _ := planHarness(t, nil, nil)
	for _, tc := range []struct {
		name               string
		key                string
		bodiless           bool
		perMinute, perHour float64
	}{
		{"free", freeLiveKey, false, 30, 500},
		{"free bodiless", freeLiveKey, true, 30, 500},
		{"developer", devLiveKey, false, 60, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := h.open(t)
			var r *extprocv3.ProcessingResponse
			if tc.bodiless {
				r = ex.roundTrip(reqHeaders(true, ":method", "GET", ":path", "/v1/models", "x-api-key", tc.key,
					"anthropic-version", "2023-06-01"))
			} else {
				body := anthropicBody("claude-haiku-4-5", "hello")
				if r := ex.roundTrip(postHeaders("/v1/messages", body, "x-api-key", tc.key)); r.GetImmediateResponse() != nil {
					t.Fatalf("refused at the headers: %s", r.GetImmediateResponse().GetBody())
				}
				r = ex.roundTrip(reqBody(body))
			}
			if ir := r.GetImmediateResponse(); ir != nil {
				t.Fatalf("refused: %d %s", ir.GetStatus().GetCode(), ir.GetBody())
			}
			md := r.GetDynamicMetadata().GetFields()[metadataNamespace].GetStructValue().GetFields()
			for k, want := range map[string]float64{metaRateLimitPerMinute: tc.perMinute, metaRateLimitPerHour: tc.perHour} {
				v, ok := md[k]
				if !ok {
					t.Errorf("metadata has no %s: %v", k, md)
					continue
				}
				if got := v.GetNumberValue(); got != want {
					t.Errorf("%s = %v (%T), want %v", k, got, v.GetKind(), want)
				}
			}
			if md["plan"].GetStringValue() == "" || md["org"].GetStringValue() == "" {
				t.Errorf("identity missing from metadata: %v", md)
			}
			_ = ex.end() // the exchange stops before the response; its status is not under test
		})
	}
}
