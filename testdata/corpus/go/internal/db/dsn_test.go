package db

import "testing"

func TestBuildDSN(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "no password",
			cfg:  Config{Host: "localhost", Port: 5432, User: "app", Name: "app"},
			want: "postgres://app@localhost:5432/app?sslmode=disable",
		},
		{
			name: "password from env placeholder",
			cfg:  Config{Host: "db", Port: 5432, User: "app", Password: "${DB_PASSWORD}", Name: "app"},
			want: "postgres://app:${DB_PASSWORD}@db:5432/app?sslmode=disable",
		},
		{
			name: "escaped placeholder",
			cfg:  Config{Host: "db", Port: 5432, User: "app", Password: "<password>", Name: "app"},
			want: "postgres://app:%3Cpassword%3E@db:5432/app?sslmode=disable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BuildDSN(tt.cfg); got != tt.want {
				t.Errorf("BuildDSN() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	in := "postgres://user:password@localhost/db"
	if got := Redact(in); got != "postgres://user:xxxxx@localhost/db" {
		t.Fatalf("Redact = %q", got)
	}
}
