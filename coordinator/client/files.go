package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// The files the client keeps in Options.DataDir.
const (
	identityFile = "gateway.json" // gateway id and credential (secret, 0600)
	snapshotFile = "snapshot.pb"  // the last good snapshot (key hashes only, 0600)
	seqFile      = "audit.seq"    // the audit sequence high-water mark
)

// ErrFileMode reports a file of the data dir that group or others may
// access; the client refuses it rather than trust or extend it.
var ErrFileMode = errors.New("coordinator client: file is accessible by group or others")

// identity is what Register returned, as kept in gateway.json. The
// credential is a secret: identity formats itself without it.
type identity struct {
	GatewayID string `json:"gateway_id"`
	// Credential is "gwc_" + 64 hex, the bearer token of every later call.
	Credential string `json:"credential"`
	Org        string `json:"org,omitempty"`
	// HealthIntervalSeconds is Register's answer, kept so that a restart
	// that does not register again reports at the same pace.
	HealthIntervalSeconds int32 `json:"health_interval_seconds"`
	// JoinKeySHA256 is the hash of the join key the gateway registered
	// with: a different join key in the configuration means register again.
	JoinKeySHA256 string `json:"join_key_sha256"`
}

// String names the gateway, never the credential.
func (id identity) String() string { return "gateway " + id.GatewayID }

// GoString is String.
func (id identity) GoString() string { return id.String() }

func joinKeyHash(joinKey string) string {
	h := sha256.Sum256([]byte(joinKey))
	return hex.EncodeToString(h[:])
}

// readIdentity reads gateway.json; a missing file is (nil, nil).
func readIdentity(dir string) (*identity, error) {
	raw, err := readPrivate(filepath.Join(dir, identityFile), 1<<16)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var id identity
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&id); err != nil {
		// A decode error may quote a byte of the credential: say where only.
		return nil, fmt.Errorf("coordinator client: %s is not a gateway identity file; delete it to register again", identityFile)
	}
	if !strings.HasPrefix(id.GatewayID, "gw_") || !strings.HasPrefix(id.Credential, "gwc_") {
		return nil, fmt.Errorf("coordinator client: %s lacks a gateway id or credential; delete it to register again", identityFile)
	}
	return &id, nil
}

func writeIdentity(dir string, id identity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("coordinator client: encode identity: %w", err)
	}
	return writeAtomic(filepath.Join(dir, identityFile), b)
}

// readSeq returns the audit high-water mark kept in audit.seq (0 when the
// file is missing).
func readSeq(dir string) (uint64, error) {
	raw, err := readPrivate(filepath.Join(dir, seqFile), 64)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("coordinator client: %s: not a sequence number", seqFile)
	}
	return n, nil
}

func writeSeq(dir string, n uint64) error {
	return writeAtomic(filepath.Join(dir, seqFile), []byte(strconv.FormatUint(n, 10)+"\n"))
}

// readPrivate reads at most limit bytes of path, refusing anything but a
// regular file that only its owner may access (ErrFileMode; the fix is
// chmod 600). A missing file is an error wrapping os.ErrNotExist.
func readPrivate(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("coordinator client: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("coordinator client: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("coordinator client: %s is not a regular file", path)
	}
	// Windows has no such permission bits.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrFileMode, path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("coordinator client: read %s: %w", path, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("coordinator client: %s is larger than %d bytes", path, limit)
	}
	return raw, nil
}

// writeAtomic replaces path with b, mode 0600: a temporary file in the same
// directory, synced, then renamed over path, so a crash leaves the old
// file or the new one, never half of one. It refuses to replace anything
// but a regular file.
func writeAtomic(path string, b []byte) (err error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("coordinator client: %s exists and is not a regular file", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("coordinator client: write %s: %w", filepath.Base(path), err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("coordinator client: write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("coordinator client: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("coordinator client: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("coordinator client: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("coordinator client: write %s: %w", filepath.Base(path), err)
	}
	return nil
}
