// Package coordinatorv1 is the generated Go code of the coordinator's gRPC
// API (coordinator.proto, DESIGN §8): messages and the
// CoordinatorService client and server. Never edit the .pb.go files; change
// the .proto and run `make generate` (buf and the plugins are pinned in
// tools/proto/go.mod).
package coordinatorv1

//go:generate sh -c "cd ../../.. && go tool -modfile=../tools/proto/go.mod buf lint && go tool -modfile=../tools/proto/go.mod buf generate"
