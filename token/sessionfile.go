package token

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/takumo/aegis/detect"
)

// The session file lets the CLI tokenize and rehydrate in separate runs.
// It holds the session key and every value in clear (base64 is not
// encryption): it is as secret as the secrets themselves. It is written
// with mode 0600 and refused when group or others may read it.
//
// Format (JSON, one object, unknown fields refused):
//
//	{"format":"takumo-aegis-session","version":1,"max_entries":10000,
//	 "key":"<base64, 32 bytes>",
//	 "entries":[{"token":"__TAKUMO_v1_KEY_8f3a2b1c__","category":"KEY","value":"<base64>"}]}
const (
	sessionFormat  = "takumo-aegis-session"
	sessionVersion = 1
	// maxSessionFile bounds what ReadSessionFile reads.
	maxSessionFile = 256 << 20
)

// ErrSessionFileMode reports a session file that group or others may
// access.
var ErrSessionFileMode = errors.New("token: session file is accessible by group or others")

type sessionFile struct {
	Format     string         `json:"format"`
	Version    int            `json:"version"`
	MaxEntries int            `json:"max_entries"`
	Key        []byte         `json:"key"`
	Entries    []sessionEntry `json:"entries"`
}

type sessionEntry struct {
	Token    string          `json:"token"`
	Category detect.Category `json:"category"`
	Value    []byte          `json:"value"`
}

// WriteSessionFile writes the vault (key, limits and every value) to path
// with mode 0600, replacing the file atomically (a temporary file in the
// same directory, then a rename). It refuses to replace anything but a
// regular file. The file holds secrets in clear.
func (v *Vault) WriteSessionFile(path string) (err error) {
	// A rename would replace whatever is at path; only ever replace a
	// session file, never a device (/dev/null), a directory or a symlink.
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("token: session file %s exists and is not a regular file", path)
	}
	buf, err := v.marshalSession()
	defer clear(buf)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".takumo-session-*")
	if err != nil {
		return fmt.Errorf("token: write session file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			// The temporary file may already hold secrets: say so if it
			// stays behind.
			if rmErr := os.Remove(f.Name()); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("token: remove temporary session file: %w", rmErr))
			}
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("token: write session file: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		return fmt.Errorf("token: write session file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("token: write session file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("token: write session file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("token: write session file: %w", err)
	}
	return nil
}

func (v *Vault) marshalSession() ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	sf := sessionFile{
		Format:     sessionFormat,
		Version:    sessionVersion,
		MaxEntries: v.max,
		Key:        v.key.b[:],
		Entries:    make([]sessionEntry, 0, len(v.byToken)),
	}
	for _, e := range v.byToken {
		sf.Entries = append(sf.Entries, sessionEntry{Token: e.token, Category: e.cat, Value: e.value})
	}
	slices.SortFunc(sf.Entries, func(a, b sessionEntry) int { return cmp.Compare(a.Token, b.Token) })
	buf, err := json.Marshal(sf)
	if err != nil {
		return nil, fmt.Errorf("token: encode session file: %w", err)
	}
	return buf, nil
}

// ReadSessionFile reads a vault written by WriteSessionFile. It refuses a
// file that group or others may access (ErrSessionFileMode; the fix is
// chmod 600), an unknown format or version, and entries whose token does
// not belong to their value under the file's key.
func ReadSessionFile(path string) (*Vault, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token: read session file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token: read session file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token: session file %s is not a regular file", path)
	}
	// Windows has no such permission bits; its ACLs are out of our reach.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrSessionFileMode, path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxSessionFile+1))
	defer clear(raw)
	if err != nil {
		return nil, fmt.Errorf("token: read session file: %w", err)
	}
	if len(raw) > maxSessionFile {
		return nil, fmt.Errorf("token: session file %s is larger than %d bytes", path, maxSessionFile)
	}
	v, err := decodeSession(raw)
	if err != nil {
		return nil, fmt.Errorf("token: session file %s: %w", path, err)
	}
	return v, nil
}

// decodeSession parses and checks a session file. Its errors never carry
// a value: they name entries by index and token only.
func decodeSession(raw []byte) (_ *Vault, err error) {
	var sf sessionFile
	defer func() {
		clear(sf.Key)
		if err != nil {
			for _, se := range sf.Entries {
				clear(se.Value)
			}
		}
	}()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		// A syntax error quotes the offending byte, which may belong to a
		// value: report the offset only.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("malformed JSON at byte %d", se.Offset)
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the session object")
	}
	if sf.Format != sessionFormat {
		return nil, fmt.Errorf("format %q, want %q", sf.Format, sessionFormat)
	}
	if sf.Version != sessionVersion {
		return nil, fmt.Errorf("version %d, want %d", sf.Version, sessionVersion)
	}
	key, err := KeyFromBytes(sf.Key)
	if err != nil {
		return nil, err
	}
	v, err := NewVault(key, Limits{MaxEntries: sf.MaxEntries})
	if err != nil {
		return nil, err
	}
	if len(sf.Entries) > v.max {
		return nil, fmt.Errorf("%d entries, more than max_entries %d", len(sf.Entries), v.max)
	}
	for i, se := range sf.Entries {
		if err := v.addChecked(se); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return v, nil
}

// addChecked adds an entry read from a session file, taking ownership of
// its value, after checking that its token is the one this vault's key
// gives the value.
func (v *Vault) addChecked(se sessionEntry) error {
	t, err := Parse(se.Token)
	if err != nil {
		return err
	}
	if t.Category != se.Category {
		return fmt.Errorf("token %s has category %s, entry says %q", se.Token, t.Category, se.Category)
	}
	if len(se.Value) == 0 {
		return fmt.Errorf("token %s: empty value", se.Token)
	}
	sum := v.mac(se.Category, se.Value)
	var hx [64]byte
	hex.Encode(hx[:], sum[:])
	if string(hx[:len(t.Hash)]) != t.Hash {
		return fmt.Errorf("token %s does not match its value under the file's key", se.Token)
	}
	if _, dup := v.byToken[se.Token]; dup {
		return fmt.Errorf("token %s appears twice", se.Token)
	}
	if _, dup := v.byMAC[sum]; dup {
		return fmt.Errorf("token %s: value appears twice", se.Token)
	}
	e := &entry{token: se.Token, cat: se.Category, value: se.Value}
	v.byToken[se.Token] = e
	v.byMAC[sum] = e
	return nil
}
