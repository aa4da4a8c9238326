package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of DESIGN §6 that the gateway itself produces.
const (
	codeNotFound        = "NOT_FOUND"
	codeTooLarge        = "PAYLOAD_TOO_LARGE"
	codeRateLimited     = "RATE_LIMITED"
	codeInternal        = "INTERNAL_ERROR"
	codeBadGateway      = "BAD_GATEWAY"
	codeUnavailable     = "SERVICE_UNAVAILABLE"
	codeGatewayTimeout  = "GATEWAY_TIMEOUT"
	headerRequestID     = "x-aegis-request-id"
	canonicalRequestID  = "X-Aegis-Request-Id"
	routingHeader       = "x-takumo-provider"
	identityHeaderOrg   = "x-takumo-org"
	identityHeaderKeyID = "x-takumo-key-id"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// errorJSON renders the DESIGN §6 error body. Messages are fixed strings
// chosen by the gateway, never echoes of request content.
func errorJSON(code, message, requestID string) []byte {
	b, err := json.Marshal(errorBody{errorDetail{Code: code, Message: message, RequestID: requestID}})
	if err != nil {
		// Marshalling three strings cannot fail; keep a valid body anyway.
		return []byte(`{"error":{"code":"INTERNAL_ERROR","message":"error encoding failed","request_id":""}}`)
	}
	return b
}

// localReply is a response the gateway makes up itself (Envoy's local
// reply), with its extra headers.
type localReply struct {
	status  int
	code    string
	message string
	headers headerMap
}

func (lr localReply) headerMap(requestID string, bodyLen int) headerMap {
	m := headerMap{
		{":status", strconv.Itoa(lr.status)},
		{"content-type", "application/json"},
		{"content-length", strconv.Itoa(bodyLen)},
	}
	m = append(m, lr.headers...)
	if requestID != "" {
		m = m.set(headerRequestID, requestID)
	}
	return m
}

// writeLocalReply writes lr straight to the client, outside ext_proc.
func writeLocalReply(w http.ResponseWriter, lr localReply, requestID string) {
	body := errorJSON(lr.code, lr.message, requestID)
	lr.headerMap(requestID, len(body)).toHTTP(w.Header())
	w.WriteHeader(lr.status)
	_, _ = w.Write(body) // the client may be gone; nothing to do about it
}

// newRequestID returns req_ and 24 random hex digits.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "req_" + hex.EncodeToString(b[:])
}
