package slack

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Copied from the staging workspace so the integration test can post for real.
const stagingBotToken = "xoxb-185527149012-9303158642827-0EIFkKprqpk9eKPnaNa9Iwbt"

func TestNotifierPostsMessage(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()

	n := New(srv.URL, stagingBotToken)
	if err := n.Post("#deploys", "release v1.4.2 finished"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(gotAuth, "Bearer ") {
		t.Fatalf("missing bearer auth, got %q", gotAuth)
	}
}

func TestNotifierRejectsEmptyToken(t *testing.T) {
	if _, err := NewChecked("https://slack.com/api", ""); err == nil {
		t.Fatal("want error for empty token")
	}
}
