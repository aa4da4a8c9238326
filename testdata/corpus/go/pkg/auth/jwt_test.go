package auth

import (
	"testing"
	"time"
)

var signingKey = []byte("8f2Kq!vN3@xR7#mT5pL9wZ")

func TestVerifyRejectsExpired(t *testing.T) {
	v := NewVerifier(signingKey, WithClock(func() time.Time { return time.Unix(1900000000, 0) }))
	// token captured from the staging gateway logs
	tok := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MDJlYjNmNi1hNDQwLTQ2ODgtYjg1OC05NmQ1YzE1ZGViMzUiLCJpc3MiOiJhY2NvdW50cyIsImF1ZCI6ImJpbGxpbmciLCJpYXQiOjE3MTQxNDYzOTgsImV4cCI6MTcxNDUzOTk0Mywic2NvcGUiOiJhZG1pbiJ9.KVKICfEsTBB3fyF0O0GF2O3r00JXtkHmE0F-5kSzsl8"
	if _, err := v.Verify(tok); err == nil {
		t.Fatal("expected expiry error")
	}
}

func TestVerifyTable(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		wantErr bool
	}{
		{name: "empty", header: "", wantErr: true},
		{name: "no bearer", header: "Basic", wantErr: true},
		{name: "token type only", header: "Bearer", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAuthorization(tt.header)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
