package extproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/llm"
	"github.com/takumo/aegis/policy"
	"github.com/takumo/aegis/token"
)

// The error codes of DESIGN §6 that this package produces.
const (
	CodeBadRequest         = "BAD_REQUEST"
	CodeUnauthorized       = "UNAUTHORIZED"
	CodeForbidden          = "FORBIDDEN"
	CodePlanLimitReached   = "PLAN_LIMIT_REACHED"
	CodeNotFound           = "NOT_FOUND"
	CodePayloadTooLarge    = "PAYLOAD_TOO_LARGE"
	CodeInternal           = "INTERNAL_ERROR"
	CodeBadGateway         = "BAD_GATEWAY"
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
)

// Sentinels of this package; each maps to one row of DESIGN §6 (see
// classify).
var (
	// ErrBodyTooLarge: a request body (as sent, or decompressed, or after
	// tokenization) over Config.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("extproc: body over the size limit")
	// ErrPolicyMismatch: the policy wants a detection tokenized that the
	// detection engine left in place (a bundle whose action overrides the
	// engine was not built with). Fail closed: the value must not travel.
	ErrPolicyMismatch = errors.New("extproc: the policy's detection actions do not match the detection engine")
	// ErrKeyStore: the key store could not decide (fail closed).
	ErrKeyStore = errors.New("extproc: key store unavailable")
	// ErrNoVault: no vault could be made for the request (the organisation
	// has no usable token secret).
	ErrNoVault = errors.New("extproc: no vault for the request")
)

// badRequestError is a request we cannot accept for a reason we name (400).
// Msg is shown to the client and never holds body content.
type badRequestError struct{ Msg string }

func (e *badRequestError) Error() string { return "extproc: bad request: " + e.Msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{Msg: fmt.Sprintf(format, args...)}
}

// DeniedError is a request the policy refused (policy.Decision with Allow
// false): Status, Code and Message are the decision's DESIGN §6 error
// (401 UNAUTHORIZED, 403 FORBIDDEN, 403 PLAN_LIMIT_REACHED), Details the
// blocking detections (where, never what). The message comes from the
// policy, which never sees a value.
type DeniedError struct {
	Status  int
	Code    string
	Message string
	Details []BlockDetail
}

// BlockDetail is one blocking detection as the client sees it.
type BlockDetail struct {
	Rule     string `json:"rule"`
	Category string `json:"category"`
	Field    string `json:"field,omitempty"`
	Line     int    `json:"line"`
}

func (e *DeniedError) Error() string {
	return "extproc: denied by policy: " + strconv.Itoa(e.Status) + " " + e.Code + ": " + e.Message
}

// UpstreamError is a provider answer the tool cannot use (502). Body is the
// provider's JSON error body, rehydrated, or nil when it was not JSON.
type UpstreamError struct {
	Status int
	Body   json.RawMessage
}

func (e *UpstreamError) Error() string {
	return "extproc: upstream provider returned " + strconv.Itoa(e.Status)
}

// errorReply is an error as the client sees it.
type errorReply struct {
	Status   int
	Code     string
	Message  string
	Details  []BlockDetail
	Upstream json.RawMessage
}

// classify is the one place that maps internal errors to what the client
// sees (DESIGN §6). Messages never contain a key, a secret or body content.
func classify(err error) errorReply {
	var (
		reqErr   *llm.RequestError
		badReq   *badRequestError
		denied   *DeniedError
		upstream *UpstreamError
	)
	switch {
	case errors.Is(err, keys.ErrUnauthorized):
		return errorReply{Status: 401, Code: CodeUnauthorized, Message: keys.ClientMessage(err)}
	case errors.Is(err, ErrKeyStore):
		return errorReply{Status: 503, Code: CodeServiceUnavailable, Message: "the key store is unavailable; retry later"}
	case errors.As(err, &denied):
		st, code := denied.Status, denied.Code
		if st < 400 || st > 499 || code == "" {
			// A policy that denies must say a client error; anything
			// else is still a refusal.
			st, code = 403, CodeForbidden
		}
		return errorReply{Status: st, Code: code, Message: denied.Message, Details: denied.Details}
	case errors.Is(err, policy.ErrNoDecision):
		return errorReply{Status: 503, Code: CodeServiceUnavailable, Message: "the gateway policy could not decide this request; retry later"}
	case errors.Is(err, ErrPolicyMismatch):
		return errorReply{Status: 503, Code: CodeServiceUnavailable,
			Message: "the gateway's detection engine does not apply the policy's detection actions; an operator must rebuild it (nothing was sent)"}
	case errors.Is(err, ErrNoProviderKey):
		return errorReply{Status: 403, Code: CodeForbidden, Message: "no provider API key is configured for this provider in the organization"}
	case errors.Is(err, llm.ErrNoRoute):
		return errorReply{Status: 404, Code: CodeNotFound, Message: "no such route: this path is not an API the gateway serves"}
	case errors.As(err, &reqErr):
		return errorReply{Status: 400, Code: CodeBadRequest, Message: reqErr.Msg}
	case errors.As(err, &badReq):
		return errorReply{Status: 400, Code: CodeBadRequest, Message: badReq.Msg}
	case errors.Is(err, ErrBodyTooLarge):
		return errorReply{Status: 413, Code: CodePayloadTooLarge, Message: "request body exceeds the size limit"}
	case errors.Is(err, token.ErrVaultFull):
		return errorReply{Status: 503, Code: CodeServiceUnavailable,
			Message: "the session holds too many secrets; start a new session (or send fewer secrets)"}
	case errors.Is(err, ErrNoVault):
		return errorReply{Status: 503, Code: CodeServiceUnavailable, Message: "no token secret is available for the organization; retry later"}
	case errors.As(err, &upstream):
		return errorReply{Status: 502, Code: CodeBadGateway,
			Message:  "upstream provider returned " + strconv.Itoa(upstream.Status),
			Upstream: upstream.Body}
	default:
		return errorReply{Status: 500, Code: CodeInternal, Message: "internal error"}
	}
}

// errorBody is the DESIGN §6 JSON error.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"request_id"`
	Details   []BlockDetail   `json:"details,omitempty"`
	Upstream  json.RawMessage `json:"upstream,omitempty"`
}

func (r errorReply) body(requestID string) []byte {
	b, err := json.Marshal(errorBody{Error: errorFields{
		Code: r.Code, Message: r.Message, RequestID: requestID,
		Details: r.Details, Upstream: r.Upstream,
	}})
	if err != nil {
		// Upstream held something json.Marshal refuses; drop it.
		b, _ = json.Marshal(errorBody{Error: errorFields{Code: r.Code, Message: r.Message, RequestID: requestID}})
	}
	return b
}

// immediate builds an ImmediateResponse with a JSON body.
func immediate(status int, body []byte, requestID, details string, extra ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	if status < 200 || status > 599 {
		// Envoy turns a status below 200 into 200: never let that happen.
		status = 500
	}
	set := append([]*corev3.HeaderValueOption{
		setHeader("content-type", "application/json"),
		setHeader(headerRequestID, requestID),
	}, extra...)
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(int32(status))},
			Headers: &extprocv3.HeaderMutation{SetHeaders: set},
			Body:    body,
			Details: details,
		},
	}}
}

// errorResponse builds the ImmediateResponse for err.
func errorResponse(err error, requestID string) (*extprocv3.ProcessingResponse, errorReply) {
	r := classify(err)
	return immediate(r.Status, r.body(requestID), requestID, "aegis_"+r.Code), r
}
