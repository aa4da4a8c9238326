package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// files of a bundle: path → content.
type files map[string]string

// embeddedFiles returns the embedded policy as bundle files, with the data
// changed by edit and revision in the manifest.
func embeddedFiles(t testing.TB, revision string, edit func(data map[string]any)) files {
	t.Helper()
	mods, data, err := embeddedPolicy(false)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(data)
	}
	js, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	f := files{"data.json": string(js), ".manifest": `{"revision":"` + revision + `"}`}
	for name, src := range mods {
		f[filepath.Base(name)] = src
	}
	return f
}

// freeRequests sets the free plan's monthly requests, so tests can tell
// which policy answered.
func freeRequests(n int) func(map[string]any) {
	return func(d map[string]any) {
		d["plans"].(map[string]any)["free"].(map[string]any)["requests_per_month"] = n
	}
}

func writeDir(t testing.TB, dir string, f files) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, content := range f {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarball builds a .tar.gz bundle from f, signed with signingKey (PEM, ES256)
// unless it is empty.
func tarball(t testing.TB, f files, signingKey string) []byte {
	t.Helper()
	dir := t.TempDir()
	writeDir(t, dir, f)
	b, err := bundle.NewCustomReader(bundle.NewDirectoryLoader(dir)).WithSkipBundleVerification(true).Read()
	if err != nil {
		t.Fatalf("read test bundle: %v", err)
	}
	if signingKey != "" {
		if err := b.GenerateSignature(bundle.NewSigningConfig(signingKey, "ES256", ""), "default", false); err != nil {
			t.Fatalf("sign: %v", err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ecKeys makes a fabricated ES256 key pair as PEM.
func ecKeys(t testing.TB) (private, public string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

// metered is an engine with a metric reader.
type metered struct {
	testEngine
	reader *sdkmetric.ManualReader
}

func newMeteredEngine(t testing.TB) metered {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	logs := &syncBuffer{}
	sink := &recordingSink{}
	e, err := New(context.Background(), Options{
		Logger:        slog.New(slog.NewJSONHandler(logs, nil)),
		Sink:          sink,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return metered{testEngine{e, sink, logs}, reader}
}

// loads returns aegis_policy_loads_total by result.
func (m metered) loads(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != "aegis_policy_loads_total" {
				continue
			}
			for _, dp := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value("result")
				out[v.AsString()] += dp.Value
			}
		}
	}
	return out
}

// freeLimit reports the free plan's monthly request limit the running
// policy enforces, probing with usage just under and at n.
func freeLimitIs(t testing.TB, e *Engine, n int64) bool {
	t.Helper()
	in := input("free", "")
	in.Org.Usage.Requests = n - 1
	below, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	in.Org.Usage.Requests = n
	at, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return below.Allow && !at.Allow && at.Code == "PLAN_LIMIT_REACHED"
}

func TestBundleFromDirectory(t *testing.T) {
	ctx := context.Background()
	m := newMeteredEngine(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	writeDir(t, dir, embeddedFiles(t, "v1", freeRequests(5)))
	l, err := m.NewBundleLoader(BundleOptions{Source: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Revision() != "v1" || !freeLimitIs(t, m.Engine, 5) {
		t.Fatalf("revision %q; bundle not in effect", m.Revision())
	}
	// Unchanged: nothing is loaded again.
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.loads(t); got["success"] != 2 || got["failure"] != 0 {
		t.Fatalf("loads = %v, want the embedded policy and v1", got)
	}

	// A bundle that does not compile keeps the last good one.
	broken := embeddedFiles(t, "v2", freeRequests(7))
	broken["aegis.rego"] = strings.Replace(broken["aegis.rego"], "operation := data.operations", "operation := := data.operations", 1)
	writeDir(t, dir, broken)
	if err := l.Poll(ctx); !errors.Is(err, ErrPolicy) {
		t.Fatalf("broken bundle: %v", err)
	}
	if m.Revision() != "v1" || !freeLimitIs(t, m.Engine, 5) {
		t.Fatalf("after a broken bundle: revision %q", m.Revision())
	}
	if got := m.loads(t); got["failure"] != 1 {
		t.Errorf("loads = %v, want one failure", got)
	}
	if !strings.Contains(m.logs.String(), "keeping the last good policy") {
		t.Errorf("no error log for the broken bundle:\n%s", m.logs.String())
	}

	// A fixed bundle loads.
	writeDir(t, dir, embeddedFiles(t, "v3", freeRequests(9)))
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Revision() != "v3" || !freeLimitIs(t, m.Engine, 9) {
		t.Fatalf("revision %q after the fix", m.Revision())
	}
}

func TestBundleFromTarballFile(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	p := filepath.Join(t.TempDir(), "policy.tar.gz")
	if err := os.WriteFile(p, tarball(t, embeddedFiles(t, "tar-1", freeRequests(3)), ""), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := e.NewBundleLoader(BundleOptions{Source: "file://" + p})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if e.Revision() != "tar-1" || !freeLimitIs(t, e.Engine, 3) {
		t.Fatalf("revision %q", e.Revision())
	}
}

// bundleServer serves one bundle at /bundles/aegis.tar.gz with an ETag and
// answers a matching If-None-Match with 304.
type bundleServer struct {
	mu      sync.Mutex
	body    []byte
	etag    string
	got200  atomic.Int64
	got304  atomic.Int64
	noneHdr atomic.Int64 // requests with If-None-Match
}

func (s *bundleServer) set(body []byte, etag string) {
	s.mu.Lock()
	s.body, s.etag = body, etag
	s.mu.Unlock()
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/bundles/aegis.tar.gz" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	body, etag := s.body, s.etag
	s.mu.Unlock()
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		s.noneHdr.Add(1)
		if inm == etag {
			s.got304.Add(1)
			w.Header().Set("ETag", etag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	s.got200.Add(1)
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(body)
}

func TestBundleFromHTTPServer(t *testing.T) {
	ctx := context.Background()
	m := newMeteredEngine(t)
	srv := &bundleServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	srv.set(tarball(t, embeddedFiles(t, "", freeRequests(4)), ""), `"etag-1"`)
	l, err := m.NewBundleLoader(BundleOptions{Source: ts.URL + "/bundles/aegis.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Revision() != `"etag-1"` || !freeLimitIs(t, m.Engine, 4) {
		t.Fatalf("revision %q", m.Revision())
	}
	// Unchanged: the server answers 304 and nothing is loaded.
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.got200.Load() != 1 || srv.got304.Load() != 1 {
		t.Fatalf("server saw %d × 200 and %d × 304", srv.got200.Load(), srv.got304.Load())
	}
	if got := m.loads(t); got["success"] != 2 {
		t.Fatalf("loads = %v", got)
	}

	// A broken bundle (data names an org on a missing plan and an unknown
	// scope) is refused; the last good policy stays.
	bad := embeddedFiles(t, "bad", func(d map[string]any) {
		d["orgs"] = map[string]any{"org_z": map[string]any{"plan": "platinum"}}
		d["operations"].(map[string]any)["proxy"] = map[string]any{"scope": "shield:admin", "credits": 1}
	})
	srv.set(tarball(t, bad, ""), `"etag-2"`)
	err = l.Poll(ctx)
	if !errors.Is(err, ErrPolicy) || !errors.Is(err, ErrData) {
		t.Fatalf("bad bundle: %v", err)
	}
	for _, s := range []string{`orgs.org_z.plan: plan "platinum" is not defined`, `unknown scope name "shield:admin"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if m.Revision() != `"etag-1"` || !freeLimitIs(t, m.Engine, 4) {
		t.Fatalf("after a bad bundle: revision %q", m.Revision())
	}
	if got := m.loads(t); got["failure"] != 1 {
		t.Errorf("loads = %v", got)
	}

	// Server down: an error, the policy stays.
	srv.set(nil, "")
	ts.Close()
	if err := l.Poll(ctx); err == nil {
		t.Fatal("poll of a closed server succeeded")
	}
	if m.Revision() != `"etag-1"` {
		t.Fatalf("revision %q", m.Revision())
	}
}

func TestBundleHTTPPollingInBackground(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	srv := &bundleServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	srv.set(tarball(t, embeddedFiles(t, "bg-1", freeRequests(6)), ""), `"bg-1"`)
	l, err := e.NewBundleLoader(BundleOptions{Source: ts.URL + "/bundles/aegis.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	l.Start(ctx)
	l.Stop(ctx)
	l.Stop(ctx) // idempotent
	if e.Revision() != "bg-1" {
		t.Fatalf("revision %q", e.Revision())
	}
}

func TestSignedBundles(t *testing.T) {
	ctx := context.Background()
	priv, pub := ecKeys(t)
	_, otherPub := ecKeys(t)
	signed := tarball(t, embeddedFiles(t, "signed", freeRequests(8)), priv)
	unsigned := tarball(t, embeddedFiles(t, "unsigned", freeRequests(8)), "")
	tests := []struct {
		name   string
		body   []byte
		key    string
		wantOK bool
	}{
		{"right key", signed, pub, true},
		{"wrong key", signed, otherPub, false},
		{"unsigned with verification on", unsigned, pub, false},
		// OPA refuses a signed bundle when no key is configured to check it.
		{"signed but no key configured", signed, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMeteredEngine(t)
			srv := &bundleServer{}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			srv.set(tc.body, `"sig"`)
			l, err := m.NewBundleLoader(BundleOptions{Source: ts.URL + "/bundles/aegis.tar.gz", VerificationKey: tc.key, Algorithm: "ES256"})
			if err != nil {
				t.Fatal(err)
			}
			err = l.Poll(ctx)
			if tc.wantOK {
				if err != nil || !freeLimitIs(t, m.Engine, 8) {
					t.Fatalf("Poll = %v, revision %q", err, m.Revision())
				}
				return
			}
			if err == nil || m.Revision() != "embedded" {
				t.Fatalf("Poll = %v, revision %q; want refused", err, m.Revision())
			}
			if got := m.loads(t); got["failure"] != 1 {
				t.Errorf("loads = %v", got)
			}
		})
	}
	// The same on a file bundle.
	e := newTestEngine(t)
	p := filepath.Join(t.TempDir(), "signed.tar.gz")
	if err := os.WriteFile(p, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := e.NewBundleLoader(BundleOptions{Source: p, VerificationKey: otherPub, Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Poll(ctx); err == nil || e.Revision() != "embedded" {
		t.Fatalf("file bundle with a wrong signature: %v, revision %q", err, e.Revision())
	}
}

func TestBadBundles(t *testing.T) {
	plans := func(d map[string]any) map[string]any { return d["plans"].(map[string]any) }
	tests := []struct {
		name   string
		edit   func(f files)
		errHas []string
	}{
		{"does not compile", func(f files) { f["aegis.rego"] += "\nbroken :=\n" }, []string{"aegis.rego"}},
		{"undefined rule", func(f files) { f["extra.rego"] = "package aegis.authz\n\nx := y\n" }, []string{"var y is unsafe"}},
		{"no decision rule", func(f files) { f["aegis.rego"] = "package aegis.authz\n\nother := 1\n" }, []string{"undefined"}},
		{"decision of the wrong shape", func(f files) {
			f["aegis.rego"] = strings.Replace(f["aegis.rego"], `"overage": overage,`, `"overage": "no",`, 1)
		}, []string{"decision.overage: want boolean, got string"}},
		{"data missing a plan", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				delete(plans(d), "free")
				d["orgs"] = map[string]any{"org_a": map[string]any{"plan": "free"}}
			})
		}, []string{`orgs.org_a.plan: plan "free" is not defined`}},
		{"plan missing fields", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				delete(plans(d)["pro"].(map[string]any), "hard_cap")
				plans(d)["pro"].(map[string]any)["colour"] = "blue"
			})
		}, []string{`unknown field "colour"`}},
		{"unknown scope", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				d["operations"].(map[string]any)["tokenize"] = map[string]any{"scope": "shield.write", "credits": 1}
			})
		}, []string{`operations.tokenize.scope: unknown scope name "shield.write"`}},
		{"unknown action and category", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				d["detections"] = map[string]any{"rules": map[string]any{"x": "warn"}, "categories": map[string]any{"PASSWORD": "block"}}
			})
		}, []string{`detections.rules.x: unknown action "warn"`, `unknown category "PASSWORD"`}},
		{"bad custom rules", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				d["custom_rules"] = []any{
					map[string]any{"id": "a", "regex": "(", "category": "KEY"},
					map[string]any{"id": "a", "regex": "x", "category": "KEY"},
				}
			})
		}, []string{"custom_rules[0].regex", `custom_rules[1].id: duplicate id "a"`}},
		{"unknown model class", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				plans(d)["free"].(map[string]any)["models"] = []any{"tiny"}
			})
		}, []string{`plans.free.models: unknown model class "tiny"`}},
		{"too many model classes", func(f files) {
			f["data.json"] = editJSON(f["data.json"], func(d map[string]any) {
				m := d["models"].(map[string]any)
				order := []any{}
				for i := range 7 {
					c := fmt.Sprint("c", i)
					order = append(order, c)
					m["classes"].(map[string]any)[c] = []any{c + "-*"}
				}
				m["order"] = append(order, "haiku", "sonnet", "opus")
			})
		}, []string{"models.order: at most 6 classes"}},
		{"data-only bundle", func(f files) { delete(f, "aegis.rego") }, []string{"no Rego modules"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := newMeteredEngine(t)
			f := embeddedFiles(t, "bad", nil)
			tc.edit(f)
			dir := filepath.Join(t.TempDir(), "b")
			writeDir(t, dir, f)
			l, err := m.NewBundleLoader(BundleOptions{Source: dir})
			if err != nil {
				t.Fatal(err)
			}
			err = l.Poll(ctx)
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("Poll = %v, want ErrPolicy", err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if m.Revision() != "embedded" {
				t.Fatalf("revision %q", m.Revision())
			}
			if d, err := m.Decide(ctx, input("free", "")); err != nil || !d.Allow {
				t.Fatalf("the embedded policy no longer decides: %+v %v", d, err)
			}
			if got := m.loads(t); got["failure"] != 1 {
				t.Errorf("loads = %v", got)
			}
		})
	}
}

func editJSON(s string, edit func(map[string]any)) string {
	var d map[string]any
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		panic(err)
	}
	edit(d)
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return string(b)
}
