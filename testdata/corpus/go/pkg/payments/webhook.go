package payments

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
)

type WebhookHandler struct {
	secret []byte
}

func NewWebhookHandler() *WebhookHandler {
	s := os.Getenv("STRIPE_WEBHOOK_SECRET")
	if s == "" {
		s = "whsec_c06LNYrB7juXjlLwC0llWrHmwdfSNgRF" // dev endpoint secret
	}
	return &WebhookHandler{secret: []byte(s)}
}

func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sig := r.Header.Get("Stripe-Signature")
	mac := hmac.New(sha256.New, h.secret)
	expected := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(expected)) {
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
