package policy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/takumo/aegis/keys"
)

// benchFixture is 100,000 keys in a key store and 1,000 orgs in the
// policy data, built once per process.
type benchFixture struct {
	store *keys.MemStore
	raws  []string
	orgs  map[string]Org
}

var benchOnce = func() func(testing.TB) *benchFixture {
	var f *benchFixture
	return func(tb testing.TB) *benchFixture {
		if f != nil {
			return f
		}
		const nKeys, nOrgs = 100_000, 1_000
		ctx := context.Background()
		fx := &benchFixture{store: keys.NewMemStore(keys.Options{Mode: keys.ModeLive}), orgs: make(map[string]Org, nOrgs)}
		plans := []string{"free", "developer", "pro", "enterprise"}
		for i := range nOrgs {
			fx.orgs[fmt.Sprintf("org_%04d", i)] = Org{Plan: plans[i%len(plans)], Seats: 1 + i%5}
		}
		fx.raws = make([]string, nKeys)
		for i := range nKeys {
			_, k, err := fx.store.Create(ctx, keys.NewKey{Org: fmt.Sprintf("org_%04d", i%nOrgs),
				Scopes: []string{keys.ScopeShieldWrite}, Mode: keys.ModeLive})
			if err != nil {
				tb.Fatal(err)
			}
			fx.raws[i] = k.Reveal()
		}
		f = fx
		return f
	}
}()

// BenchmarkDecide measures one request's policy work with 100,000 keys in
// the key store and 1,000 orgs in the policy data: authenticate the key,
// read the month's usage, decide (model check, four detections). It reports
// the 99th percentile of the per-call durations as p99-ns. The inputs
// repeat per org and model (4,000 combinations), as in production where an
// org sends the same model many times a month; the detections sit on
// different lines in every call, as real secrets do, so the memo answers
// from its line-free space (detection_lines: "copied"). After the first
// few thousand calls the decisions come from the memo;
// discard-log-no-memo evaluates Rego every time.
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	fx := benchOnce(b)
	sinks := []struct {
		name   string
		sink   Sink
		noMemo bool
	}{
		{"discard-log", DiscardSink{}, false},
		{"slog-json-log", SlogSink{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, false},
		// Every decision evaluated in Rego (the memo's miss path).
		{"discard-log-no-memo", DiscardSink{}, true},
	}
	for _, s := range sinks {
		b.Run(s.name, func(b *testing.B) {
			e, err := New(ctx, Options{Sink: s.sink, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			if err := e.SetOrgs(ctx, fx.orgs); err != nil {
				b.Fatal(err)
			}
			if s.noMemo {
				e.cur.Load().memo.Store(nil)
			}
			models := []string{"claude-haiku-4-5", "claude-sonnet-4-5", "gpt-4o-mini", ""}
			dets := []Detection{
				{Rule: "aws-access-key-id", Category: "KEY", Action: "tokenize", Line: 3},
				{Rule: "generic-password", Category: "SECRET", Action: "tokenize", Line: 8},
				{Rule: "postgres-url", Category: "CONN", Action: "tokenize", Line: 11},
				{Rule: "github-pat", Category: "TOKEN", Action: "monitor", Line: 40},
			}
			durations := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for k := range dets {
					dets[k].Line = 1 + (i*31+k*7)%2000
				}
				start := time.Now()
				rec, err := fx.store.Authenticate(ctx, fx.raws[(i*7919)%len(fx.raws)])
				if err != nil {
					b.Fatal(err)
				}
				u, _ := fx.store.Month(rec.Org, start)
				_, err = e.Decide(ctx, Input{
					RequestID:  "req_0123456789abcdef",
					Key:        KeyInput{ID: rec.ID, Org: rec.Org, Mode: string(rec.Mode), Scopes: rec.Scopes, Status: string(rec.State)},
					Org:        OrgInput{ID: rec.Org, Plan: "free", Usage: Usage{Requests: u.Live.Requests, Credits: u.Live.Credits}},
					Request:    RequestInfo{Method: "POST", Path: "/v1/messages", Provider: "anthropic", Model: models[i%len(models)], Operation: "proxy"},
					Detections: dets,
				})
				if err != nil {
					b.Fatal(err)
				}
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			if len(durations) > 0 {
				slices.Sort(durations)
				p99 := durations[(len(durations)*99)/100]
				if len((durations)) < 100 {
					p99 = durations[len(durations)-1]
				}
				b.ReportMetric(float64(p99.Nanoseconds()), "p99-ns")
			}
		})
	}
}

// BenchmarkRegoBaseline is the cost of the smallest OPA evaluation (one
// rule, one comparison) on the same machine, to read BenchmarkDecide
// against: a busy or slow machine inflates both alike.
func BenchmarkRegoBaseline(b *testing.B) {
	ctx := context.Background()
	pq, err := rego.New(rego.Query("data.x.allow"), rego.Module("x.rego", "package x\n\nallow if input.key.status == \"active\"\n")).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	in := input("free", "")
	v := in.value()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalParsedInput(v)); err != nil {
			b.Fatal(err)
		}
	}
}
