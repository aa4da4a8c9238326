package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/takumo/aegis/cli"
	"github.com/takumo/aegis/e2e/fakeprovider"
	"github.com/takumo/aegis/policy"
)

// The fleet: a coordinator and a gateway that gets its keys from it, both
// as a user runs them (takumo-aegis coordinator; takumo-aegis gateway with
// TAKUMO_COORDINATOR_URL and TAKUMO_JOIN_KEY), driven with the real
// Anthropic SDK. A key made with the admin API works through the gateway;
// revoked through the admin API, the gateway refuses it within 2 s; the
// request's audit event reaches the coordinator with its detections and
// without any secret or key.
func TestFleetThroughCoordinator(t *testing.T) {
	const adminToken = "tka_e2e_admin_token_0123456789abcdef"
	t.Setenv("TAKUMO_ADMIN_TOKEN", adminToken)
	grpcAddr, adminAddr := freeAddr(t), freeAddr(t)
	coordOut, coordErr := &syncBuffer{}, &syncBuffer{}
	stopCoord := runMain(t, []string{"coordinator", "--listen", grpcAddr, "--admin-listen", adminAddr,
		"--data-dir", filepath.Join(t.TempDir(), "coordinator"), "--policy-debounce-ms", "100",
		"--telemetry-flush-interval-ms", "200"}, coordOut, coordErr)
	t.Cleanup(func() {
		if code := stopCoord(); code != cli.ExitOK {
			t.Errorf("coordinator exited %d:\n%s", code, coordErr)
		}
	})
	admin := func(method, path string, body any, out any) int {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, "http://"+adminAddr+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer func() { _ = resp.Body.Close() }()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	waitFor(t, "the coordinator", func() bool { return admin(http.MethodGet, "/v1/keys", nil, nil) == http.StatusOK }, coordErr)

	if st := admin(http.MethodPut, "/v1/orgs/acme", map[string]any{"plan": "pro", "seats": 2}, nil); st != http.StatusOK {
		t.Fatalf("put org: %d", st)
	}
	var jk struct {
		JoinKey string `json:"join_key"`
	}
	if st := admin(http.MethodPost, "/v1/join-keys", map[string]string{"name": "e2e"}, &jk); st != http.StatusCreated {
		t.Fatalf("join key: %d", st)
	}
	var key struct{ ID, Key string }
	if st := admin(http.MethodPost, "/v1/keys", map[string]any{"org": "acme", "name": "ci", "scopes": []string{"shield:write"}, "mode": "test"}, &key); st != http.StatusCreated {
		t.Fatalf("create key: %d", st)
	}

	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	t.Cleanup(p.Close)
	cfg := writeConfig(t, p, fmt.Sprintf("coordinator_url: %s\njoin_key: %s\nmode: test\n", grpcAddr, jk.JoinKey))
	gwOut, gwErr := &syncBuffer{}, &syncBuffer{}
	stopGW := runMain(t, []string{"gateway", "--listen", "127.0.0.1:0", "--config", cfg}, gwOut, gwErr)
	t.Cleanup(func() {
		if code := stopGW(); code != cli.ExitOK {
			t.Errorf("gateway exited %d:\n%s", code, gwErr)
		}
	})
	addrRe := regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`)
	waitFor(t, "the gateway", func() bool { return addrRe.MatchString(gwErr.String()) }, gwErr)
	g := &gateway{base: "http://" + addrRe.FindStringSubmatch(gwErr.String())[1], key: key.Key, stderr: gwErr, stdout: gwOut}

	// Until its first snapshot the gateway fails closed (503); then the
	// coordinator's key works.
	waitFor(t, "the first snapshot", func() bool {
		return g.post(t, "/v1/messages", "application/json", messagesBody(t, "hello"), nil).status == http.StatusOK
	}, gwErr)
	prompt := "Deploy with AWS key " + awsKeyID + " and token " + ghToken + " please."
	msg, err := anthropicClient(g).Messages.New(context.Background(), anthropicParams(prompt))
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for _, b := range msg.Content {
		if b.Type == "text" {
			text = b.AsText().Text
		}
	}
	if text != prompt {
		t.Fatalf("the SDK got %q, want the original prompt back", text)
	}
	assertProviderSawNoSecret(t, p, []string{awsKeyID, ghToken, key.Key})

	// Revoked through the admin API: refused within 2 s.
	start := time.Now()
	if st := admin(http.MethodPost, "/v1/keys/"+key.ID+"/revoke", nil, nil); st != http.StatusOK {
		t.Fatalf("revoke: %d", st)
	}
	var r reply
	for {
		r = g.post(t, "/v1/messages", "application/json", messagesBody(t, "after revoke"), nil)
		if r.status == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the revoked key still works %v later (status %d)", time.Since(start), r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("revocation took effect on the gateway in %v", time.Since(start).Round(time.Millisecond))
	if b := wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED"); !strings.Contains(b.Error.Message, "revoked") {
		t.Fatalf("401 message %q does not say revoked", b.Error.Message)
	}
	var sdkErr *anthropic.Error
	if _, err := anthropicClient(g).Messages.New(context.Background(), anthropicParams("x")); err == nil ||
		!errors.As(err, &sdkErr) || sdkErr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("SDK after revoke: %v", err)
	}

	// The audit trail reached the coordinator: the SDK request with its two
	// detections, and the refused ones.
	var audit struct {
		Events []struct {
			Org        string `json:"org"`
			KeyID      string `json:"key_id"`
			Status     int    `json:"status"`
			Detections []struct {
				Rule, Category, Action string
				Line                   int
			} `json:"detections"`
		} `json:"events"`
	}
	var raw bytes.Buffer
	waitFor(t, "audit events at the coordinator", func() bool {
		if admin(http.MethodGet, "/v1/audit?limit=1000", nil, &audit) != http.StatusOK {
			return false
		}
		for _, e := range audit.Events {
			if e.Status == http.StatusOK && len(e.Detections) == 2 && e.Org == "acme" && e.KeyID == key.ID {
				return true
			}
		}
		return false
	}, coordErr)
	b, _ := json.Marshal(audit)
	raw.Write(b)
	for _, s := range []string{awsKeyID, ghToken, key.Key, jk.JoinKey} {
		for what, out := range map[string]string{"audit": raw.String(), "coordinator log": coordErr.String(), "gateway log": gwErr.String()} {
			if strings.Contains(out, s) {
				t.Fatalf("%s holds a secret or key (%.6s…)", what, s)
			}
		}
	}

	// The fleet lists the gateway.
	var fleet struct {
		Gateways []struct{ Status, Mode string } `json:"gateways"`
	}
	waitFor(t, "the gateway in the fleet", func() bool {
		return admin(http.MethodGet, "/v1/fleet", nil, &fleet) == http.StatusOK && len(fleet.Gateways) == 1
	}, coordErr)
	if fleet.Gateways[0].Mode != "test" {
		t.Fatalf("fleet: %+v", fleet)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// A standalone gateway embeds a coordinator: the admin commands work
// against it (keys list, keys revoke, usage), and a key revoked that way is
// refused by the gateway at once.
func TestStandaloneGatewayAdmin(t *testing.T) {
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	t.Cleanup(p.Close)
	adminAddr := freeAddr(t)
	t.Setenv("TAKUMO_ADMIN_TOKEN", "tka_e2e_standalone_admin_token_01")
	g := startGateway(t, p, gatewayOpts{args: []string{"--admin-listen", adminAddr}})
	if r := g.post(t, "/v1/messages", "application/json", messagesBody(t, "hello "+awsKeyID), nil); r.status != http.StatusOK {
		t.Fatalf("dev key: %d %s", r.status, r.body)
	}
	adminCLI := func(args ...string) string {
		t.Helper()
		var out, errb syncBuffer
		code := cli.Main(t.Context(), append(args, "--coordinator", "http://"+adminAddr), strings.NewReader(""), &out, &errb)
		if code != cli.ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	var keys struct {
		Keys []struct{ ID, Org, State string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(adminCLI("keys", "list", "--output", "json")), &keys); err != nil || len(keys.Keys) != 1 ||
		keys.Keys[0].Org != "standalone" || keys.Keys[0].State != "active" {
		t.Fatalf("keys list: %+v %v", keys, err)
	}
	waitFor(t, "usage at the embedded coordinator", func() bool {
		return strings.Contains(adminCLI("usage"), "standalone")
	}, g.stderr)
	adminCLI("keys", "revoke", keys.Keys[0].ID)
	start := time.Now()
	for {
		r := g.post(t, "/v1/messages", "application/json", messagesBody(t, "after"), nil)
		if r.status == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the revoked dev key still works (%d)", r.status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revoked through the embedded coordinator in %v", time.Since(start).Round(time.Millisecond))

	// The audit buffer is on /metrics.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var m bytes.Buffer
	_, _ = m.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(m.String(), "aegis_audit_events_dropped_total 0") ||
		!strings.Contains(m.String(), "aegis_audit_events_buffered") {
		t.Fatalf("/metrics %d lacks the audit buffer:\n%.2000s", resp.StatusCode, m.String())
	}
}

// writeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, as PEM files in dir.
func writeCerts(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aegis test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (string, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", kd)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	srvCert, srvKey = leaf("coordinator", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cliCert, cliKey = leaf("gateway", 3, x509.ExtKeyUsageClientAuth, nil)
	return
}

// A coordinator that requires mTLS: a gateway with the CA and its client
// certificate joins and serves; one without a client certificate never
// gets a snapshot and fails closed (503).
func TestFleetMTLS(t *testing.T) {
	const adminToken = "tka_e2e_admin_token_mtls_0123456789"
	t.Setenv("TAKUMO_ADMIN_TOKEN", adminToken)
	ca, srvCert, srvKey, cliCert, cliKey := writeCerts(t, t.TempDir())
	grpcAddr, adminAddr := freeAddr(t), freeAddr(t)
	coordErr := &syncBuffer{}
	stopCoord := runMain(t, []string{"coordinator", "--listen", grpcAddr, "--admin-listen", adminAddr,
		"--data-dir", filepath.Join(t.TempDir(), "coordinator"), "--tls-cert", srvCert, "--tls-key", srvKey, "--tls-client-ca", ca},
		&syncBuffer{}, coordErr)
	t.Cleanup(func() { _ = stopCoord() })
	post := func(path string, body any, out any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+adminAddr+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer func() { _ = resp.Body.Close() }()
		_ = json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	var jk struct {
		JoinKey string `json:"join_key"`
	}
	waitFor(t, "the coordinator", func() bool {
		return post("/v1/join-keys", map[string]string{"name": "mtls"}, &jk) == http.StatusCreated
	}, coordErr)
	var key struct{ Key string }
	if st := post("/v1/keys", map[string]any{"org": "acme", "scopes": []string{"shield:write"}, "mode": "test"}, &key); st != http.StatusCreated {
		t.Fatalf("create key: %d", st)
	}
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	t.Cleanup(p.Close)
	start := func(extra string) *gateway {
		cfg := writeConfig(t, p, fmt.Sprintf("coordinator_url: %s\njoin_key: %s\nmode: test\ncoordinator_ca: %s\n%s", grpcAddr, jk.JoinKey, ca, extra))
		g := &gateway{stdout: &syncBuffer{}, stderr: &syncBuffer{}, key: key.Key}
		stop := runMain(t, []string{"gateway", "--listen", "127.0.0.1:0", "--config", cfg}, g.stdout, g.stderr)
		t.Cleanup(func() { _ = stop() })
		addrRe := regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`)
		waitFor(t, "the gateway", func() bool { return addrRe.MatchString(g.stderr.String()) }, g.stderr)
		g.base = "http://" + addrRe.FindStringSubmatch(g.stderr.String())[1]
		return g
	}
	withCert := start(fmt.Sprintf("coordinator_cert: %s\ncoordinator_key: %s\n", cliCert, cliKey))
	waitFor(t, "the mTLS gateway's first snapshot", func() bool {
		return withCert.post(t, "/v1/messages", "application/json", messagesBody(t, "hi"), nil).status == http.StatusOK
	}, withCert.stderr)

	noCert := start("")
	time.Sleep(500 * time.Millisecond) // give it the chance it must not take
	r := noCert.post(t, "/v1/messages", "application/json", messagesBody(t, "hi"), nil)
	wantError(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
}

// writeBundle writes the embedded policy as an OPA bundle (.tar.gz) with
// its data changed by edit.
func writeBundle(t *testing.T, revision string, edit func(map[string]any)) string {
	t.Helper()
	p, err := policy.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	edit(p.Data)
	data, err := json.Marshal(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	add("/.manifest", []byte(`{"revision":"`+revision+`"}`))
	add("/data.json", data)
	for name, src := range p.Modules {
		add("/"+filepath.Base(name), []byte(src))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A policy bundle set on the coordinator (policies set --bundle) replaces
// the gateway's policy; taking it away brings the embedded one back.
func TestPolicyBundleFromCoordinator(t *testing.T) {
	p := fakeprovider.New(func(w *fakeprovider.ResponseWriter, r *fakeprovider.Request) {
		w.JSON(http.StatusOK, anthropicEcho(t, r).JSON())
	})
	t.Cleanup(p.Close)
	adminAddr := freeAddr(t)
	t.Setenv("TAKUMO_ADMIN_TOKEN", "tka_e2e_bundle_admin_token_0123")
	g := startGateway(t, p, gatewayOpts{args: []string{"--admin-listen", adminAddr}})
	status := func() int { return g.post(t, "/v1/messages", "application/json", messagesBody(t, "hi"), nil).status }
	if st := status(); st != http.StatusOK {
		t.Fatalf("before: %d", st)
	}
	adminCLI := func(args ...string) {
		t.Helper()
		var out, errb syncBuffer
		if code := cli.Main(t.Context(), append(args, "--coordinator", "http://"+adminAddr), strings.NewReader(""), &out, &errb); code != cli.ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
	}
	// The enterprise plan (the standalone org's) may use haiku only.
	bundle := writeBundle(t, "haiku-only", func(d map[string]any) {
		d["plans"].(map[string]any)["enterprise"].(map[string]any)["models"] = []any{"haiku"}
	})
	adminCLI("policies", "set", "--revision", "haiku-only", "--bundle", bundle)
	poll := func(want int) func() bool {
		return func() bool {
			time.Sleep(50 * time.Millisecond) // stay far below the rate limit
			return status() == want
		}
	}
	waitFor(t, "the bundle to deny the model", poll(http.StatusForbidden), g.stderr)
	r := g.post(t, "/v1/messages", "application/json", messagesBody(t, "hi"), nil)
	if b := wantError(t, r, http.StatusForbidden, "FORBIDDEN"); !strings.Contains(b.Error.Message, "claude-sonnet-4-5") {
		t.Fatalf("403 message %q does not name the model", b.Error.Message)
	}
	data := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(data, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	adminCLI("policies", "set", "--revision", "data-only", "--data", data)
	waitFor(t, "the embedded policy back", poll(http.StatusOK), g.stderr)
}
