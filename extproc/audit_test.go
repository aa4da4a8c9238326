package extproc

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every finished exchange gives Config.Audit one record with the request's
// metadata and the effective action of each detection, and never a value
// or a key; refused and aborted exchanges are recorded too.
func TestAuditRecords(t *testing.T) {
	var (
		mu   sync.Mutex
		recs []AuditRecord
	)
	h := newHarness(t, func(c *Config) {
		c.Audit = func(r AuditRecord) { mu.Lock(); recs = append(recs, r); mu.Unlock() }
	})
	tc := providerCases()[0]
	body := []byte(tc.request)

	ex := h.open(t)
	ex.roundTrip(postHeaders(tc.path, body, "x-api-key", testKey))
	ex.roundTrip(reqBody(body))
	reply := []byte(tc.response("done"))
	ex.roundTrip(respHeaders(false, ":status", "200", "content-type", "application/json", "content-length", strconv.Itoa(len(reply))))
	ex.roundTrip(respBody(reply, true))
	ex.closeOK()

	ex = h.open(t)
	ex.roundTrip(postHeaders(tc.path, body, "x-api-key", "tk_test_"+strings.Repeat("0", 64)))
	ex.closeOK()

	ex = h.open(t)
	ex.roundTrip(postHeaders(tc.path, body, "x-api-key", testKey))
	_ = ex.end() // the data plane gave up after the headers

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(recs)
		mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want 3: %+v", len(recs), recs)
	}
	ok := recs[0]
	if ok.Status != 200 || ok.Org != "org_acme" || ok.KeyID != "key_test1" || ok.Provider != "anthropic" ||
		ok.Model != "claude-sonnet-4-5" || ok.Mode != ModeTest || !strings.HasPrefix(ok.RequestID, "req_") ||
		ok.Duration <= 0 || len(ok.Detections) != len(plantedInOrder) {
		t.Fatalf("record of the allowed request: %+v", ok)
	}
	for _, d := range ok.Detections {
		if d.Rule == "" || d.Category == "" || d.Action != "tokenize" || d.Line < 1 {
			t.Fatalf("detection %+v", d)
		}
	}
	if r := recs[1]; r.Status != 401 || r.Code != CodeUnauthorized || r.KeyID != "" {
		t.Fatalf("record of the refused key: %+v", r)
	}
	if r := recs[2]; r.Code != "ABORTED" || r.Status == 200 {
		t.Fatalf("record of the aborted exchange: %+v", r)
	}
	assertNoSecret(t, "audit records", []byte(fmt.Sprintf("%+v %#v", recs, recs)))
}
