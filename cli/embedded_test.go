package cli

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"

	"github.com/takumo/aegis/coordinator/store"
)

// Seeding the embedded store: configured keys and the dev key become keys
// of the standalone org; a restart with a new dev key revokes the old one;
// a key an operator revoked stays revoked.
func TestSeedStandalone(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	conf := "tk_test_" + strings.Repeat("1", 64)
	devA, devB := "tk_test_"+strings.Repeat("a", 64), "tk_test_"+strings.Repeat("b", 64)
	cfg := &serverConfig{Mode: "test", Plan: "pro", APIKeys: []string{conf}}
	state := func(raw string) string {
		t.Helper()
		ks, err := st.ListKeys(ctx, standaloneOrg)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			if k.Hash == sha256.Sum256([]byte(raw)) {
				return k.State
			}
		}
		return "absent"
	}
	if err := seedStandalone(ctx, st, cfg, devA); err != nil {
		t.Fatal(err)
	}
	if state(conf) != "active" || state(devA) != "active" {
		t.Fatalf("first start: %s %s", state(conf), state(devA))
	}
	ks, _ := st.ListKeys(ctx, standaloneOrg)
	for _, k := range ks {
		if k.Hash == sha256.Sum256([]byte(conf)) {
			if _, err := st.SetKeyState(ctx, k.ID, store.StateRevoked); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := seedStandalone(ctx, st, cfg, devB); err != nil {
		t.Fatal(err)
	}
	if state(conf) != "revoked" || state(devA) != "revoked" || state(devB) != "active" {
		t.Fatalf("second start: configured %s, old dev %s, new dev %s", state(conf), state(devA), state(devB))
	}
	orgs, err := st.ListOrgs(ctx)
	if err != nil || len(orgs) != 1 || orgs[0].Plan != "pro" {
		t.Fatalf("orgs: %+v %v", orgs, err)
	}
}
