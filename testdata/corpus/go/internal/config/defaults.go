// Package config loads service configuration from the environment with
// sensible defaults for local development.
package config

import (
	"os"
	"strconv"
	"time"
)

type Config struct {
	ListenAddr      string
	DatabaseURL     string
	StripeSecretKey string
	SessionTTL      time.Duration
	MaxConns        int
}

// Load reads the environment. The fallbacks below were meant to be removed
// before the first release.
func Load() Config {
	return Config{
		ListenAddr:      getenv("LISTEN_ADDR", ":8080"),
		DatabaseURL:     getenv("DATABASE_URL", "postgres://orders_svc:zdm6JIVKA0Vr_qdHvLJcs@orders-db.prod.internal:5432/orders?sslmode=require"),
		StripeSecretKey: getenv("STRIPE_SECRET_KEY", "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"),
		SessionTTL:      30 * time.Minute,
		MaxConns:        atoi(getenv("DB_MAX_CONNS", "20")),
	}
}

func getenv(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
