// Package envoy holds the Envoy configurations we ship, and their validation.
//
// Files (the Envoy version they target is in VERSION, matching the
// go-control-plane/envoy module in go.mod):
//
//	edge.yaml               TLS edge gateway: ext_proc, global and local rate limits, provider routes
//	sidecar.yaml            the same next to an application: ext_proc over a Unix socket
//	istio/envoyfilter.yaml  our ext_proc filter in Istio sidecars and an Istio ingress gateway
//
// No Envoy binary is available where we build, so [Validate] checks a file
// the way Envoy would load it, against the API of that version: YAML to
// plain values, a strict schema walk (unknown fields, unknown enum values,
// unresolvable "@type" URLs and ill-formed scalars, each reported at its
// field path), strict protojson into bootstrapv3.Bootstrap (or, for an
// Istio EnvoyFilter, the Envoy type each patch's applyTo implies), then
// protoc-gen-validate's ValidateAll on the root and on the message inside
// every google.protobuf.Any (which ValidateAll alone does not open). The
// extensions a file may name are registered by the blank imports of
// extensions.go.
//
// On top, the project's own rules (lint.go), from DESIGN §2 and the
// ext_proc wire contract (extproc/doc.go):
//   - ext_proc: failure_mode_allow false; processing mode request headers
//     SEND, request body BUFFERED, response headers SEND, response body
//     BUFFERED; allow_mode_override true; no observability mode, no
//     send_body_without_waiting_for_header_response; message_timeout at
//     least [MinMessageTimeout]; receiving namespace [MetadataNamespace];
//     the route cache cleared after it (route_cache_action CLEAR, or DEFAULT
//     without disable_clear_route_cache); a per-route override never
//     fails open.
//   - rate limiting: the ratelimit and local_ratelimit filters after
//     ext_proc, the router last; domain [RateLimitDomain]; x-ratelimit-*
//     headers (DRAFT_VERSION_03); every forwarding route sends exactly the
//     descriptors of envoy/ratelimit/config.yaml, [("org"), ("plan")] and
//     [("key"), ("plan")] read from ext_proc's dynamic metadata, then the
//     same two with ("window", "hour"); the local filter enabled and
//     enforced.
//   - clusters: every cluster named by a route, a grpc_service or the rate
//     limit service exists; gRPC clusters speak HTTP/2; every cluster has a
//     connect_timeout and every forwarding route a positive timeout;
//     upstream TLS has SNI, a trusted CA and a name check; port 443
//     without TLS is refused.
//   - admin on loopback or a Unix socket; access logs never record bodies,
//     credential headers or the path with its query.
//
// Validate returns every problem it finds, each naming its field path.
// Structural problems (the first stage) stop the later stages, which need
// a decoded file.
package envoy
