// Package gateway is the standalone data plane (DESIGN §9): a small HTTP
// front that plays Envoy's role for one machine. It knows the product only
// through the ext_proc gRPC API (envoy.service.ext_proc.v3): it drives an
// ExternalProcessor stream per request exactly as Envoy's ext_proc filter
// would for the modes Takumo Aegis uses, then rate-limits, routes by the
// provider header and proxies to the provider. It imports none of extproc,
// llm, token or detect.
//
// # What is modelled (reference/extproc-anchors.md §1.16)
//
//   - One Process stream per request. Request headers go first, lower-cased,
//     with the pseudo-headers :method, :path, :authority and :scheme, values
//     in raw_value, protocol_config in the first message and end_of_stream
//     when no body follows.
//   - Request body BUFFERED (one message, the whole body, bounded by
//     Config.MaxBodyBytes: over it the client gets 413 PAYLOAD_TOO_LARGE) or
//     NONE (passed through unprocessed, as after a mode_override that left it
//     at zero). Response body NONE, BUFFERED or STREAMED.
//   - Mutations with Envoy's rules (see applyHeaderMutation): raw_value,
//     the deprecated append flag (append_action ignored), changes to host,
//     :authority, :scheme, :method and x-envoy-* ignored (or an error with
//     disallow_is_error), pseudo-headers and host not removable,
//     body_mutation in header replies only with CONTINUE_AND_REPLACE,
//     header mutations ignored in STREAMED body replies, clear_route_cache
//     only on the request path and only with a header mutation.
//   - Content-length: kept for BUFFERED with header SEND and then required to
//     equal the mutated body (else 500); removed automatically for
//     STREAMED; a mode_override to STREAMED leaves it in place (the server
//     must remove it); CONTINUE_AND_REPLACE with a body removes it.
//   - mode_override only in header replies, only with allow_mode_override
//     (and allowed_override_modes when set); body modes are copied as given
//     (zero means NONE), header modes DEFAULT mean unchanged.
//   - STREAMED responses: each upstream read becomes one chunk, sent
//     pipelined (the gateway does not wait for a reply before sending the
//     next chunk); replies are matched 1:1 and in order, and each reply's
//     body is written and flushed to the client at once. The last chunk
//     carries end_of_stream (an empty one when the upstream's EOF came
//     alone).
//   - Dynamic metadata is accepted only for the namespaces listed in
//     metadata_options.receiving_namespaces.untyped; the rate limiter reads
//     its descriptors from the "takumo.aegis" namespace (org, key_id, and
//     the org's rate_limit_per_minute and rate_limit_per_hour), falling
//     back to the x-takumo-org and x-takumo-key-id headers.
//   - Failures (§1.7): a gRPC error or spurious reply gives status_on_error
//     (500) before the response started, and a broken stream after it (the
//     handler panics with http.ErrAbortHandler, so an HTTP/1.1 client sees
//     the connection close without the final chunk and an HTTP/2 client a
//     stream reset). message_timeout gives 504. A server that closes the
//     stream with OK before the exchange is complete makes Envoy fail OPEN:
//     the gateway does the same, logs it at error level and counts it in
//     aegis_extproc_failures_total{kind="ok_close"}. failure_mode_allow
//     true turns the other failures into the same fail-open.
//   - Local replies from filters after ext_proc (rate limit 429, no route
//     404, upstream 502/504) travel back through the ext_proc response path,
//     as in Envoy; local replies raised during ext_proc's own request phase
//     (413, ext_proc errors) do not.
//
// # Decisions
//
//   - message_timeout defaults to 10 s here (Envoy's default is 200 ms, too
//     short for tokenizing a large prompt); DefaultFilter sets it.
//   - The route is computed from the request headers when the request
//     arrives and recomputed only when a request-phase reply clears the
//     route cache, as Envoy's HCM does. x-takumo-provider picks the
//     upstream; missing or unknown gives 404 NOT_FOUND, Envoy's "no route".
//   - The upstream Host is the upstream URL's host (Envoy's
//     auto_host_rewrite); every x-takumo-* header and the hop-by-hop headers
//     are removed before the request goes upstream. Responses are not
//     decompressed. Trailers are not sent to ext_proc (the configs we ship
//     use trailer mode SKIP, which New enforces).
//   - Rate limiting runs after ext_proc's request phase, like Envoy's
//     rate-limit filter placed after ext_proc, behind the RateLimiter
//     interface so a global rate-limit service can replace the local token
//     buckets. Its x-ratelimit-* headers are added to the response before
//     ext_proc sees the response headers (Envoy's encode order).
//   - The org's limits come from its plan, as OPA decided them: ext_proc
//     puts rate_limit_per_minute and rate_limit_per_hour (numbers, -1 for
//     unlimited) in the takumo.aegis metadata, and the org descriptor
//     carries them as overrides (Descriptor.Override, Envoy's
//     RateLimitOverride). The local limiter keeps a per-minute bucket of
//     the plan's size, and a per-hour bucket (the hourly figure, refilled
//     over the hour) when the plan has one. RateLimits.PerOrg is a cap,
//     not an override: it can lower a plan's per-minute limit (to protect
//     one machine or upstream), never raise it; without plan limits in the
//     metadata (absent, or not a whole number ≥ -1) it is the org's limit,
//     as before; with an unlimited plan it is the only per-minute limit.
//     PerOrg.Burst, when set, also caps the plan bucket's size. So the
//     cli's --rate-limit-per-org 0 means "no cap beyond the plan". A
//     plan change resizes an org's buckets on its next request (the tokens
//     are kept, cut to the new size). The X-RateLimit-Limit/Remaining/Reset
//     headers describe the bucket closest to empty (fewest whole tokens
//     left; on a tie the slowest to refill), org minute, org hour or key;
//     a 429 RATE_LIMITED adds Retry-After, the time until every bucket
//     has a token.
//   - Every error the gateway itself produces is the DESIGN §6 JSON body
//     and every response carries X-Aegis-Request-Id (ext_proc's id, or a
//     fresh req_ id when ext_proc gave none).
//   - The ext_proc connection is the caller's; ExtProcDialOptions raises
//     gRPC's 4 MiB message limit to fit MaxBodyBytes (the ext_proc server
//     must raise MaxRecvMsgSize too, or large bodies fail closed with 500).
//   - Observability: aegis_gateway_requests_total{status,provider},
//     aegis_gateway_request_duration_seconds,
//     aegis_gateway_upstream_errors_total{kind} (prefixed, because the
//     ext_proc server in the same process exports the reference names
//     aegis_requests_total etc. for the same requests, as it does behind
//     Envoy, and one Prometheus scrape cannot hold a name twice),
//     aegis_rate_limit_checks_total{result} and
//     aegis_extproc_failures_total{kind} through the OTel MeterProvider
//     (Prometheus text on /metrics); one span per request with a child span
//     per ext_proc phase and for the upstream; logs never carry header
//     values, bodies or upstream URLs (a query string can hold a key).
//   - /healthz is 200 while serving; /readyz is 200 when the ext_proc
//     connection is usable and a one-time probe (GET /v1/health as request
//     headers) got a well-formed reply; 503 while shutting down.
//
// A Gateway holds no global state; all of it hangs off the value New
// returns, and it is safe for concurrent use.
package gateway
