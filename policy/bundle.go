package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
)

// BundleOptions configure a BundleLoader (the --policy-bundle flag and its
// companions).
type BundleOptions struct {
	// Source is a path (a bundle directory or a .tar.gz bundle file) or an
	// http(s) URL of a bundle server.
	Source string
	// MinDelay and MaxDelay bound the jittered wait between polls (whole
	// seconds for HTTP, as OPA's downloader counts them). Defaults 10s and
	// 30s.
	MinDelay, MaxDelay time.Duration
	// VerificationKey turns signature verification on: a PEM public key
	// (RS*, PS*, ES* algorithms) or a shared secret (HS*). Bundles without
	// a valid .signatures.json are then refused.
	VerificationKey string
	// KeyID names the key (default "default"); Algorithm defaults to RS256;
	// Scope is the optional scope claim the signature must carry.
	KeyID, Algorithm, Scope string
	// SizeLimitBytes bounds a bundle file (OPA's default when 0).
	SizeLimitBytes int64
}

// BundleLoader keeps an Engine's policy in step with an OPA bundle. HTTP
// sources use OPA's downloader (If-None-Match with the last ETag, 304 means
// no change, optional signature verification); file sources are re-read
// when their contents change. Each new bundle goes through Engine.Load:
// compiled, validated and swapped in atomically, or refused with an error
// log and a metric while the last good policy stays.
type BundleLoader struct {
	// immutable after construction
	e     *Engine
	opts  BundleOptions
	label string // the source without credentials, for logs
	bvc   *bundle.VerificationConfig
	dl    *download.Downloader // HTTP sources
	path  string               // file sources

	mu      sync.Mutex // serializes Poll and file polling
	lastFP  string     // guarded by mu: fingerprint of the last file bundle tried
	lastErr error      // result of the last HTTP update callback: written under mu (the callback runs inside Poll) or, after Start, only by the downloader goroutine

	stopOnce sync.Once
	cancel   context.CancelFunc // set by Start
	done     chan struct{}      // closed when the file poller exits
}

// NewBundleLoader prepares a loader for opts.Source. It does not fetch
// anything: call Poll for a first load, then Start for polling.
func (e *Engine) NewBundleLoader(opts BundleOptions) (*BundleLoader, error) {
	if opts.Source == "" {
		return nil, errors.New("policy: bundle: no source")
	}
	if opts.MinDelay <= 0 {
		opts.MinDelay = 10 * time.Second
	}
	if opts.MaxDelay < opts.MinDelay {
		opts.MaxDelay = max(30*time.Second, opts.MinDelay)
	}
	l := &BundleLoader{e: e, opts: opts}
	if opts.VerificationKey != "" {
		if opts.KeyID == "" {
			opts.KeyID = "default"
		}
		if opts.Algorithm == "" {
			opts.Algorithm = "RS256"
		}
		kc, err := keys.NewKeyConfig(opts.VerificationKey, opts.Algorithm, opts.Scope)
		if err != nil {
			return nil, fmt.Errorf("policy: bundle verification key: %w", err)
		}
		l.bvc = bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{opts.KeyID: kc}, opts.KeyID, opts.Scope, nil)
		l.opts = opts
	}
	u, err := url.Parse(opts.Source)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		safe := *u
		safe.User = nil
		safe.RawQuery = ""
		l.label = safe.String()
		if l.dl, err = l.newDownloader(u); err != nil {
			return nil, err
		}
		return l, nil
	}
	l.path = strings.TrimPrefix(opts.Source, "file://")
	l.label = l.path
	return l, nil
}

// newDownloader makes OPA's downloader for u in periodic mode: Poll
// triggers it by hand before Start runs its loop.
func (l *BundleLoader) newDownloader(u *url.URL) (*download.Downloader, error) {
	trigger := plugins.TriggerPeriodic
	base := url.URL{Scheme: u.Scheme, Host: u.Host, User: u.User}
	cfg, err := json.Marshal(map[string]any{"url": base.String(), "name": "aegis-policy"})
	if err != nil {
		return nil, err
	}
	client, err := rest.New(cfg, nil, rest.Logger(logging.NewNoOpLogger()))
	if err != nil {
		return nil, fmt.Errorf("policy: bundle client: %w", err)
	}
	minS, maxS := int64(l.opts.MinDelay/time.Second), int64(l.opts.MaxDelay/time.Second)
	minS = max(minS, 1)
	maxS = max(maxS, minS)
	dc := download.Config{Trigger: &trigger, Polling: download.PollingConfig{MinDelaySeconds: &minS, MaxDelaySeconds: &maxS}}
	if err := dc.ValidateAndInjectDefaults(); err != nil {
		return nil, fmt.Errorf("policy: bundle polling: %w", err)
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	d := download.New(dc, client, p).
		WithCallback(l.onUpdate).
		WithBundleVerificationConfig(l.bvc).
		WithBundleParserOpts(ast.ParserOptions{RegoVersion: ast.RegoV1})
	if l.opts.SizeLimitBytes > 0 {
		d = d.WithSizeLimitBytes(l.opts.SizeLimitBytes)
	}
	return d, nil
}

// Poll fetches the bundle once now and loads it if it changed. It returns
// the download, verification or load error, if any (the last good policy
// stays). Do not call Poll after Start.
func (l *BundleLoader) Poll(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dl != nil {
		l.lastErr = nil
		err := l.dl.Trigger(ctx)
		if err == nil {
			err = l.lastErr
		}
		return err
	}
	return l.pollFile(ctx)
}

// onUpdate is the downloader's callback: a failed download, a 304, or a
// new bundle.
func (l *BundleLoader) onUpdate(ctx context.Context, u download.Update) error {
	if u.Error != nil {
		err := fmt.Errorf("%w (source %s): download: %w", ErrPolicy, l.label, u.Error)
		l.fail(ctx, err)
		l.lastErr = err
		return nil // the downloader already reports u.Error
	}
	if u.Bundle == nil {
		return nil // 304 Not Modified: nothing to do
	}
	rev := u.Bundle.Manifest.Revision
	if rev == "" {
		rev = u.ETag
	}
	if err := l.load(ctx, u.Bundle, rev); err != nil {
		l.lastErr = err
		return err
	}
	return nil
}

// fail logs and counts a bundle that could not be fetched or read.
func (l *BundleLoader) fail(ctx context.Context, err error) {
	l.e.ins.loads.Add(ctx, 1, l.e.ins.loadFailure)
	l.e.log.ErrorContext(ctx, "policy bundle refused; keeping the last good policy", "source", l.label, "error", err)
}

// load hands a bundle to the engine (which logs and counts a failure).
func (l *BundleLoader) load(ctx context.Context, b *bundle.Bundle, rev string) error {
	mods := make(map[string]*ast.Module, len(b.Modules))
	for _, m := range b.Modules {
		if m.Parsed == nil {
			return fmt.Errorf("%w (source %s): module %s was not parsed", ErrPolicy, l.label, m.Path)
		}
		mods[m.Path] = m.Parsed
	}
	if len(mods) == 0 {
		// A data-only bundle would leave no policy at all: refuse it, so
		// that the engine keeps deciding with the last good one.
		err := fmt.Errorf("%w (source %s, revision %s): the bundle has no Rego modules", ErrPolicy, l.label, rev)
		l.fail(ctx, err)
		return err
	}
	return l.e.Load(ctx, Policy{Parsed: mods, Data: b.Data, Source: l.label, Revision: rev})
}

// pollFile reads a file or directory bundle if its fingerprint changed.
func (l *BundleLoader) pollFile(ctx context.Context) error {
	fp, err := fingerprint(l.path)
	if err != nil {
		err = fmt.Errorf("%w (source %s): %w", ErrPolicy, l.label, err)
		l.fail(ctx, err)
		return err
	}
	if fp == l.lastFP {
		return nil
	}
	l.lastFP = fp
	b, err := l.readFile()
	if err != nil {
		err = fmt.Errorf("%w (source %s): %w", ErrPolicy, l.label, err)
		l.fail(ctx, err)
		return err
	}
	rev := b.Manifest.Revision
	if rev == "" {
		rev = "sha256:" + fp[:16]
	}
	return l.load(ctx, b, rev)
}

func (l *BundleLoader) readFile() (*bundle.Bundle, error) {
	fi, err := os.Stat(l.path)
	if err != nil {
		return nil, err
	}
	var loader bundle.DirectoryLoader
	if fi.IsDir() {
		loader = bundle.NewDirectoryLoader(l.path)
	} else {
		raw, err := os.ReadFile(l.path)
		if err != nil {
			return nil, err
		}
		loader = bundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), l.path)
	}
	r := bundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithBundleVerificationConfig(l.bvc)
	if l.opts.SizeLimitBytes > 0 {
		r = r.WithSizeLimitBytes(l.opts.SizeLimitBytes)
	}
	b, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	return &b, nil
}

// fingerprint hashes the names, sizes and contents of the files of a
// bundle (a file or a directory tree).
func fingerprint(p string) (string, error) {
	h := sha256.New()
	var files []string
	err := filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(p, f)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Start polls in the background until Stop or until ctx ends: HTTP sources
// with OPA's downloader (jittered between MinDelay and MaxDelay, backing off
// on errors), file sources every MinDelay.
func (l *BundleLoader) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	if l.dl != nil {
		// The downloader keeps the ETag of the last Poll, so its first
		// request is conditional.
		l.dl.Start(ctx)
		return
	}
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.opts.MinDelay)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				l.mu.Lock()
				_ = l.pollFile(ctx) // logged and counted inside
				l.mu.Unlock()
			}
		}
	}()
}

// Stop ends background polling and waits for it.
func (l *BundleLoader) Stop(ctx context.Context) {
	l.stopOnce.Do(func() {
		if l.cancel != nil {
			l.cancel()
		}
		if l.dl != nil && l.cancel != nil {
			l.dl.Stop(ctx)
		}
		if l.done != nil {
			<-l.done
		}
	})
}

// ParseBundle reads an OPA bundle (.tar.gz) held in memory, such as one the
// coordinator pushed, into a Policy for Load. The revision is the
// manifest's, else the bundle's SHA-256. Bundles from the coordinator come
// over its authenticated channel; they carry no signature check here.
func ParseBundle(raw []byte, source string) (Policy, error) {
	if len(raw) > MaxBundleBytes {
		return Policy{}, fmt.Errorf("%w (source %s): bundle of %d bytes exceeds %d", ErrPolicy, source, len(raw), MaxBundleBytes)
	}
	r := bundle.NewCustomReader(bundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), source)).
		WithRegoVersion(ast.RegoV1).
		WithSizeLimitBytes(MaxBundleBytes)
	b, err := r.Read()
	if err != nil {
		return Policy{}, fmt.Errorf("%w (source %s): read bundle: %w", ErrPolicy, source, err)
	}
	mods := make(map[string]*ast.Module, len(b.Modules))
	for _, m := range b.Modules {
		if m.Parsed == nil {
			return Policy{}, fmt.Errorf("%w (source %s): module %s was not parsed", ErrPolicy, source, m.Path)
		}
		mods[m.Path] = m.Parsed
	}
	if len(mods) == 0 {
		return Policy{}, fmt.Errorf("%w (source %s): the bundle has no Rego modules", ErrPolicy, source)
	}
	rev := b.Manifest.Revision
	if rev == "" {
		sum := sha256.Sum256(raw)
		rev = "sha256:" + hex.EncodeToString(sum[:8])
	}
	return Policy{Parsed: mods, Data: b.Data, Source: source, Revision: rev}, nil
}

// MaxBundleBytes bounds a bundle read from memory (and each file in it).
const MaxBundleBytes = 32 << 20
