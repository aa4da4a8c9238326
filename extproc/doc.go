// Package extproc is the Envoy external processor (envoy.service.ext_proc.v3)
// that makes a request safe to send to an AI provider and makes its response
// whole again. One processor object serves one gRPC stream (one HTTP
// request); it is owned by the stream's goroutine and is not safe for
// concurrent use.
//
// # Phases (DESIGN §2)
//
//  1. Request headers: answer GET /v1/health, POST /v1/tokenize and
//     POST /v1/detect with an ImmediateResponse; authenticate the Takumo key
//     (Authorization: Bearer tk_… or x-api-key: tk_…); resolve the route
//     (llm.Resolve; unknown path → 404). Bodiless requests are completed here.
//  2. Request body (BUFFERED): decode content-encoding gzip/deflate (bounded),
//     parse with the route's codec, pick the session and its vault, tokenize,
//     replace the body, and in the same reply set the headers below.
//  3. Response headers: choose the response codec; for text/event-stream
//     switch the response body to STREAMED with mode_override (repeating
//     request_body_mode BUFFERED) and remove content-length; map provider
//     errors (DESIGN §6).
//  4. Response body: rehydrate (whole body, or chunk by chunk holding back
//     partial tokens); the last chunk flushes everything.
//
// Every failure is answered with an ImmediateResponse carrying the DESIGN §6
// JSON error, or, once the response has started, with a non-OK gRPC status;
// the stream never ends with OK before the exchange is complete (Envoy would
// carry on without us: fail-open).
//
// # Wire contract with the data plane (Envoy or package gateway)
//
// Request header mutations, in the request-body reply (or the header reply
// for bodiless requests), with clear_route_cache set:
//
//	x-takumo-provider   anthropic | openai | mistral | gemini  (routing: picks the upstream cluster)
//	x-takumo-org        org id
//	x-takumo-key-id     id of the Takumo key (never the key)
//	x-takumo-plan       plan name
//	x-aegis-request-id  req_<random>, also on every response
//	:path               the upstream path (llm.Route.Path)
//	accept-encoding     identity
//	content-length      the new body length
//	authorization / x-api-key / x-goog-api-key: the provider key for the org
//	(Anthropic x-api-key; OpenAI and Mistral Authorization: Bearer; Gemini
//	x-goog-api-key); the client's Takumo key is removed.
//
// Dynamic metadata, namespace "takumo.aegis" (the data plane's receiving
// namespace): org, key_id, plan, provider, model, request_id. Rate limiting
// reads its descriptors from here.
//
// Response header mutations: x-aegis-request-id; for event streams, remove
// content-length.
//
// ext_proc always overwrites the identity headers above, so a client cannot
// forge them. The data plane removes every x-takumo-* header (the client's
// X-Takumo-Session included) before the request goes upstream.
package extproc
