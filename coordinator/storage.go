package coordinator

import (
	"context"
	"time"

	"github.com/takumo/aegis/coordinator/store"
)

// Storage is what the coordinator needs from its database. *store.Store
// implements it on SQLite and on PostgreSQL (one SQL, one test suite run
// against both); a test may put a fault-injecting one in front.
type Storage interface {
	ID(ctx context.Context) (string, error)
	Version(ctx context.Context) (uint64, error)
	Ping(ctx context.Context) error

	CreateJoinKey(ctx context.Context, j store.JoinKey) error
	JoinKey(ctx context.Context, id string) (store.JoinKey, error)
	JoinKeyByHash(ctx context.Context, h [32]byte) (store.JoinKey, error)
	ListJoinKeys(ctx context.Context) ([]store.JoinKey, error)
	RevokeJoinKey(ctx context.Context, id string, at time.Time) error

	CreateGateway(ctx context.Context, g store.Gateway) error
	GatewayByCredential(ctx context.Context, h [32]byte) (store.Gateway, error)
	ListGateways(ctx context.Context) ([]store.Gateway, error)
	ReportHealth(ctx context.Context, id string, h store.Health) error

	CreateKey(ctx context.Context, k store.APIKey) (uint64, error)
	Key(ctx context.Context, id string) (store.APIKey, error)
	ListKeys(ctx context.Context, org string) ([]store.APIKey, error)
	SetKeyState(ctx context.Context, id, state string) (uint64, error)

	PutOrg(ctx context.Context, o store.Org) (uint64, error)
	DeleteOrg(ctx context.Context, id string) (uint64, error)
	ListOrgs(ctx context.Context) ([]store.Org, error)

	SetPolicy(ctx context.Context, p store.Policy) (uint64, error)
	Policy(ctx context.Context) (store.Policy, bool, error)
	Changes(ctx context.Context, since uint64) (store.Changes, error)

	AppendAudit(ctx context.Context, events []store.AuditEvent) (int, error)
	Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error)

	AddUsage(ctx context.Context, deltas []store.UsageDelta) error
	Usage(ctx context.Context, org string, at time.Time) ([]store.UsageRow, error)
}

var _ Storage = (*store.Store)(nil)
