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
//     (Authorization: Bearer tk_… or x-api-key: tk_…; for Gemini tools also
//     x-goog-api-key or the key= query parameter, which never goes
//     upstream); resolve the route
//     (llm.Resolve; unknown path → 404). Bodiless requests are completed here.
//  2. Request body (BUFFERED): decode content-encoding gzip/deflate (bounded),
//     parse with the route's codec, pick the session and its vault, tokenize,
//     replace the body, and in the same reply set the headers below.
//  3. Response headers: choose the response codec; for text/event-stream
//     (and Gemini's streamGenerateContent without alt=sse, one JSON array
//     streamed element by element: llm.StreamedJSON) switch the response
//     body to STREAMED with mode_override (repeating
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
//	:path               the upstream path (llm.Route.Path, any key= query parameter removed)
//	accept-encoding     identity
//	content-length      the new body length
//	authorization / x-api-key / x-goog-api-key: the provider key for the org
//	(Anthropic x-api-key; OpenAI and Mistral Authorization: Bearer; Gemini
//	x-goog-api-key); the client's Takumo key is removed.
//
// Dynamic metadata, namespace "takumo.aegis" (the data plane's receiving
// namespace): org, key_id, plan, provider, model, request_id (strings), and
// the org's rate limits as the policy decided them for its plan
// (policy.Decision.RateLimit; numbers, whole requests, -1 for unlimited,
// omitted when the decision has none):
//
//	rate_limit_per_minute   requests per minute for the org (free: 30)
//	rate_limit_per_hour     requests per hour for the org (free: 500)
//
// Rate limiting reads its descriptors from here: org and key_id, the org's
// descriptor with the plan's limits as overrides (Envoy's
// RateLimitOverride from dynamic metadata; package gateway keeps a
// per-minute and a per-hour bucket per org).
//
// Response header mutations: x-aegis-request-id in the response-headers
// reply; for event streams, remove content-length there too; for a 429
// without Retry-After but with x-ratelimit-reset, retry-after. In the
// BUFFERED response-body reply: content-length of the rewritten body (and
// content-encoding removed when the body was decompressed).
//
// ext_proc always overwrites the identity headers above, so a client cannot
// forge them. The data plane removes every x-takumo-* header (the client's
// X-Takumo-Session included) before the request goes upstream; the
// request-body reply also lists x-takumo-session in remove_headers, and
// content-encoding when the body was decompressed.
//
// # What the data plane must be configured with
//
// request_header_mode SEND, request_body_mode BUFFERED, response_header_mode
// SEND, response_body_mode BUFFERED (or STREAMED), allow_mode_override true,
// send_body_without_waiting_for_header_response false, failure_mode_allow
// false, receiving namespace "takumo.aegis", a message_timeout of seconds
// (not Envoy's 200 ms default), and gRPC message limits from ServerOptions.
// A first message whose protocol_config says otherwise for the request
// body is refused with FailedPrecondition: secrets must never pass because
// of a configuration slip.
//
// # Decisions
//
// Authentication (auth.go): keys.FromHeaders finds the key in
// Authorization: Bearer or x-api-key (x-goog-api-key or key= when neither
// is sent), keys.Parse checks its shape and the server its mode before the
// KeyStore is asked, so the 401 message (keys.ClientMessage) names the
// mistake. A key store that fails for any other reason than a refused key
// gives 503 (fail closed).
//
// Policy (decide.go): every allow or deny comes from Config.Policy
// (policy.Engine; the embedded policy when nil), asked once per request
// when the model and the detections are known: after the body, at the
// headers for bodiless requests, with operation proxy, tokenize or detect.
// The input carries the key record (never the key), the org's plan
// (Config.OrgPlan; DefaultPlan when nil) and its live usage this month from
// the key store, the request and the detections (rule, category, engine
// action, line; never a value). A deny is the decision's status, code and
// message (403 FORBIDDEN for a missing scope or a model outside the plan,
// 403 PLAN_LIMIT_REACHED, 401), with the blocking detections (rule,
// category, field, line) as details; a policy that cannot decide is a 503.
// The decision's headers (x-aegis-plan, x-aegis-overage) go on the
// response, its plan into x-takumo-plan. An allowed request's usage (one
// request, the decision's credits; test keys counted apart) is recorded
// in the key store when the exchange ends, unless the gateway itself
// refused it afterwards.
//
// Per-detection actions (detector.go): with Config.EngineOptions the
// detection engine follows the running policy. It is built from those
// options plus the policy's data.detections overrides (per rule id and per
// category) and data.custom_rules (compiled with detect.ParsePolicy, the
// checks of a --policy file), in the policy's order of precedence: the
// policy's rule entry, else the custom rule's own action, else the
// policy's category entry, else the engine's action. Each request compares
// policy.Engine.Generation with the engine's (one atomic load); when the
// policy changed (a load, a bundle, a SetData) the engine is rebuilt under
// a mutex, one rebuild at a time, and swapped atomically. A rebuild that
// fails keeps the last good engine, logs an error and counts
// aegis_detect_engine_rebuilds_total{result="failure"}; it is retried only
// when the policy changes again. A policy that says block, monitor, off or
// tokenize for a rule therefore gets exactly that from the tokenizer, and
// /v1/detect reports those actions (off rules are not run).
//
// The policy's effective actions are still checked against what the
// tokenizer did, as a safety net (reached only when a rebuild failed, or
// without EngineOptions, when Config.Engine is used as it is): a policy
// block denies; a policy tokenize for a detection the engine left in place
// fails closed with 503, since the value would travel in clear; a policy
// monitor or off for a detection the engine tokenized keeps the token (the
// safer direction).
//
// Sessions (DESIGN §4): X-Takumo-Session, else X-Claude-Code-Session-Id,
// else the session hint of the body (llm.RequestInfo.Session), else a vault
// for the request alone, keyed DeriveSessionKey(org secret, org,
// "request "+request id) and cleared when the exchange ends. Session vaults
// live in Config.Sessions under "org/session". A session id over 256 bytes
// is a 400. OpenAI Responses' previous_response_id does not select a session
// by itself: a tool that chains responses must send a session header.
//
// Request bodies: a declared content-length over MaxBodyBytes, an
// unsupported content-encoding (anything but identity, gzip, deflate) and a
// non-JSON content-type are refused at the headers; the body is refused if
// over the limit as sent, when decompressed (the decompressor stops at the
// limit, so a gzip bomb costs at most the limit in memory), or after
// tokenization. ErrVaultFull is a 503 and nothing is forwarded. Any
// detection with the block action is a 403 listing rule, category, field
// and line. An organisation without a key for the provider gets 403
// FORBIDDEN (a configuration fault no retry fixes).
//
// /v1/tokenize answers {"content", "detections": [{type, category, line,
// column, length, token}]} using the session vault when a session header is
// sent; a block detection makes it a 403 as for proxying. /v1/detect
// answers {"detections": [{type, category, action, line, column, length}]}.
// GET /v1/health answers {"status":"ok"} without a key.
//
// Provider errors (DESIGN §6): these statuses reach the tool as they are,
// body rehydrated, when the body is JSON: 400, 404, 408, 409, 413, 422, 429,
// 500, 503, 504, 529 (the SDKs type them and retry 408/409/429/5xx with the
// provider's own retry headers). A 429 always passes, JSON or not (it may
// be the data plane's rate-limit reply); when it lacks Retry-After but has
// x-ratelimit-reset, Retry-After is added. Every other error status (401
// and 403 mean the organisation's provider key was refused, which the tool's
// own key cannot fix; 402, 405, 501, 502, …) and any error body that is not
// JSON (an HTML page from a load balancer) become 502 BAD_GATEWAY: the
// message names the provider's status and error.upstream carries its JSON
// body, rehydrated (omitted when it was not JSON).
//
// Responses: event streams (2xx text/event-stream) switch to STREAMED; each
// chunk gets exactly one reply with a body mutation (empty while holding
// back). A compressed event stream cannot be rewritten and becomes a 502;
// a compressed BUFFERED body is decoded and content-encoding removed. A
// STREAMED response that ends with trailers while bytes are held back is
// reset (DataLoss) rather than truncated.
//
// Telemetry: one slog record per exchange (request_id, method, provider,
// model, status, upstream_status, org, key_id, detection counts, duration;
// never a value, a key or body content), OTel metrics
// aegis_requests_total{status,provider}, aegis_request_duration_seconds,
// aegis_secrets_detected_total{category,action},
// aegis_vault_entries{scope}, aegis_upstream_errors_total{provider,status},
// aegis_concurrent_sessions, and a span per exchange with a child span per
// phase.
package extproc
