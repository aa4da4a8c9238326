// Package coordinator is the fleet's control plane (DESIGN §8): gateways
// register with a join key, receive versioned snapshots of keys, orgs and
// policy, report health and ship audit metadata. Storage lives in
// coordinator/store; the gRPC API in api/takumo/coordinator/v1.
package coordinator
