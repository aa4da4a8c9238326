package keys

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestNoKeyInOutput plants generated keys, drives every path that can fail
// or print, captures everything the package returns or formats, and
// searches it for the keys (whole, or their random part).
func TestNoKeyInOutput(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	s, _ := newStore(t, ModeLive)

	var planted []string
	for i := range 20 {
		mode := ModeLive
		if i%2 == 1 {
			mode = ModeTest
		}
		rec, k, err := s.Create(ctx, NewKey{Org: "org_leak", Name: fmt.Sprint("k", i), Scopes: []string{ScopeShieldWrite}, Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		raw := k.Reveal()
		planted = append(planted, raw)
		log.Info("created", "record", rec, "key", k)
		fmt.Fprintf(&out, "%v %+v %#v %s\n", rec, k, k, s)
		if i%3 == 0 {
			_ = s.Disable(ctx, rec.ID)
		}
		if i%5 == 0 {
			_ = s.Revoke(ctx, rec.ID)
		}
		variants := []string{
			raw, raw + "\n", " " + raw, strings.ToUpper(raw), raw[:len(raw)-1], raw + "0", raw[:len(raw)-1] + "g",
			raw + "," + raw, "tk_prod_" + raw[8:], strings.ToUpper(raw[:8]) + raw[8:],
		}
		for _, v := range variants {
			_, err := s.Authenticate(ctx, v)
			if err != nil {
				log.Error("auth", "err", err, "msg", ClientMessage(err))
			}
			_, err = Parse(v)
			if err != nil {
				fmt.Fprintln(&out, err, ClientMessage(err))
			}
		}
		for _, h := range [][2]string{
			{raw, ""}, {"Bearer " + raw + ", Bearer " + raw, ""}, {"", raw + ", " + raw},
			{"Bearer " + raw, planted[0]}, {"Token " + raw, ""}, {"Bearer " + raw + " " + raw, ""},
		} {
			if _, err := FromHeaders(h[0], h[1]); err != nil {
				log.Warn("headers", "err", err)
				fmt.Fprintln(&out, ClientMessage(err))
			}
		}
	}
	list, _ := s.List(ctx, "org_leak")
	log.Info("list", "records", list)
	fmt.Fprintf(&out, "%+v\n", list)

	text := out.String()
	if len(text) < 1000 {
		t.Fatalf("captured only %d bytes; the test would not see a leak", len(text))
	}
	for _, raw := range planted {
		for _, needle := range []string{raw[8:], strings.ToUpper(raw[8:]), raw[8:40], raw[40:]} {
			if strings.Contains(text, needle) {
				t.Fatalf("output contains a planted key (or half of one)")
			}
		}
	}
}
