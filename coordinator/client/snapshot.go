package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
	"github.com/takumo/aegis/keys"
)

// maxSnapshotFile bounds what the client reads back from snapshot.pb: the
// coordinator's largest snapshot (64 MiB) and some room.
const maxSnapshotFile = 65 << 20

// errBaseMismatch means a delta does not apply to the snapshot held: the
// client resyncs with a full snapshot.
var errBaseMismatch = errors.New("delta does not apply to the snapshot held")

// state is one applied snapshot. It is immutable once published: a delta
// makes a new state (copy on write), so a request sees one version whole.
type state struct {
	version   uint64
	storeID   string // the coordinator database the versions belong to
	createdAt time.Time
	keys      map[string]*coordv1.ApiKey // by id
	orgs      map[string]*coordv1.Org    // by id
	policy    *coordv1.Policy            // nil: none received
	// index answers Authenticate: a keys.MemStore holding every key's
	// record (hash only), in the gateway's mode, so refusals are exactly
	// those of the standalone key store.
	index *keys.MemStore
}

// apply returns the state that sn brings cur to. A full snapshot
// (base_version 0) replaces everything; a delta must start at cur's
// version (errBaseMismatch otherwise). Keys the gateway cannot hold (an
// unknown scope or state, a bad hash) are left out, and so refused, with a
// warning.
func apply(cur *state, sn *coordv1.Snapshot, mode keys.Mode, log *slog.Logger) (*state, error) {
	next := &state{version: sn.GetVersion(), createdAt: sn.GetCreatedAt().AsTime(), storeID: sn.GetStoreId()}
	if sn.GetBaseVersion() == 0 {
		next.keys = make(map[string]*coordv1.ApiKey, len(sn.GetKeys()))
		next.orgs = make(map[string]*coordv1.Org, len(sn.GetOrgs()))
	} else {
		if cur == nil || cur.version != sn.GetBaseVersion() || (sn.GetStoreId() != "" && cur.storeID != sn.GetStoreId()) {
			return nil, errBaseMismatch
		}
		next.keys = maps.Clone(cur.keys)
		next.orgs = maps.Clone(cur.orgs)
		next.policy = cur.policy
	}
	for _, k := range sn.GetKeys() {
		next.keys[k.GetId()] = k
	}
	for _, id := range sn.GetRemovedKeyIds() {
		delete(next.keys, id)
	}
	for _, o := range sn.GetOrgs() {
		next.orgs[o.GetId()] = o
	}
	for _, id := range sn.GetRemovedOrgIds() {
		delete(next.orgs, id)
	}
	if sn.GetPolicy() != nil {
		next.policy = sn.GetPolicy()
	}
	next.index = keys.NewMemStore(keys.Options{Mode: mode})
	for _, k := range next.keys {
		rec, err := record(k)
		if err == nil {
			err = next.index.Put(context.Background(), rec)
		}
		if err != nil {
			log.Warn("coordinator client: key left out of the snapshot (refused until fixed)", "key_id", k.GetId(), "err", err)
		}
	}
	return next, nil
}

// record is the keys.Record of a snapshot key.
func record(k *coordv1.ApiKey) (keys.Record, error) {
	if len(k.GetHash()) != sha256.Size {
		return keys.Record{}, fmt.Errorf("hash of %d bytes, want %d", len(k.GetHash()), sha256.Size)
	}
	rec := keys.Record{ID: k.GetId(), Org: k.GetOrg(), Name: k.GetName(), Scopes: slices.Clone(k.GetScopes()),
		Mode: keys.Mode(k.GetMode()), State: keys.State(k.GetState()), Created: k.GetCreatedAt().AsTime()}
	copy(rec.Hash[:], k.GetHash())
	return rec, nil
}

// full is the state as one full snapshot, as snapshot.pb holds it.
func (s *state) full() *coordv1.Snapshot {
	sn := &coordv1.Snapshot{Version: s.version, Policy: s.policy, StoreId: s.storeID}
	if !s.createdAt.IsZero() {
		sn.CreatedAt = timestamppb.New(s.createdAt)
	}
	for _, id := range slices.Sorted(maps.Keys(s.keys)) {
		sn.Keys = append(sn.Keys, s.keys[id])
	}
	for _, id := range slices.Sorted(maps.Keys(s.orgs)) {
		sn.Orgs = append(sn.Orgs, s.orgs[id])
	}
	return sn
}

// saveSnapshot writes s to dir/snapshot.pb (0600, atomically). The file
// holds what the coordinator sent: key hashes, never keys.
func saveSnapshot(dir string, s *state) error {
	b, err := proto.Marshal(s.full())
	if err != nil {
		return fmt.Errorf("coordinator client: encode snapshot: %w", err)
	}
	return writeAtomic(filepath.Join(dir, snapshotFile), b)
}

// loadSnapshot reads dir/snapshot.pb. It returns the snapshot and the
// file's modification time, which the client moves forward while it is in
// sync (the time it last knew the file to be current). A missing file is
// (nil, zero, nil).
func loadSnapshot(dir string) (*coordv1.Snapshot, time.Time, error) {
	path := filepath.Join(dir, snapshotFile)
	raw, err := readPrivate(path, maxSnapshotFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("coordinator client: %w", err)
	}
	var sn coordv1.Snapshot
	if err := proto.Unmarshal(raw, &sn); err != nil {
		return nil, time.Time{}, fmt.Errorf("coordinator client: %s is not a snapshot: %w", path, err)
	}
	if sn.GetBaseVersion() != 0 {
		return nil, time.Time{}, fmt.Errorf("coordinator client: %s holds a delta, not a full snapshot", path)
	}
	return &sn, fi.ModTime(), nil
}

// touchSnapshot records that the snapshot file is current as of t.
func touchSnapshot(dir string, t time.Time) error {
	err := os.Chtimes(filepath.Join(dir, snapshotFile), t, t)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("coordinator client: %w", err)
	}
	return nil
}

// Org is an organization as the snapshot holds it.
type Org struct {
	ID    string
	Plan  string
	Seats int
}

// Policy is the operator's policy from the snapshot. DataJSON and Bundle
// are empty when the embedded defaults apply.
type Policy struct {
	Revision string
	DataJSON []byte
	Bundle   []byte
}

func orgsOf(s *state) []Org {
	if s == nil {
		return nil
	}
	out := make([]Org, 0, len(s.orgs))
	for _, o := range s.orgs {
		out = append(out, Org{ID: o.GetId(), Plan: o.GetPlan(), Seats: int(o.GetSeats())})
	}
	slices.SortFunc(out, func(a, b Org) int { return strings.Compare(a.ID, b.ID) })
	return out
}
