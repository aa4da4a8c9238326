package client

import (
	"context"
	"runtime/metrics"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "github.com/takumo/aegis/api/takumo/coordinator/v1"
)

// healthLoop calls ReportHealth every interval (Register's answer, or
// Options.HealthInterval). A failed report is logged and tried again at
// the next tick; a refused credential ends the session.
func (c *Client) healthLoop(ctx context.Context, api coordv1.CoordinatorServiceClient, id identity, fail func(error)) {
	every := c.opt.HealthInterval
	if every <= 0 {
		every = time.Duration(id.HealthIntervalSeconds) * time.Second
	}
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := c.reportHealth(ctx, api); err != nil {
			if ctx.Err() != nil {
				return
			}
			if refused(err) {
				fail(err)
				return
			}
			c.log.Warn("coordinator client: health report failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Client) reportHealth(ctx context.Context, api coordv1.CoordinatorServiceClient) error {
	var s Stats
	if c.opt.Stats != nil {
		s = c.opt.Stats()
	}
	version := c.Version()
	usage, restore := c.pending.take()
	resp, err := api.ReportHealth(ctx, &coordv1.ReportHealthRequest{Version: c.opt.Version, SnapshotVersion: version,
		ActiveSessions: s.ActiveSessions, MemoryBytes: memoryBytes(), SentAt: timestamppb.New(c.opt.Now()),
		Requests: s.Requests, Errors: s.Errors, LatencyP99Ms: s.LatencyP99Ms, Usage: usage,
		UsageOrgs: c.fleet.orgs()})
	if err != nil {
		// Not counted yet: the next report carries it. (A report whose
		// answer alone was lost is counted twice: usage errs high.)
		restore()
		return err
	}
	c.fleet.set(resp.GetOrgUsage())
	if c.inSync.Load() {
		// Still in sync: a restart within Grace may serve the file.
		if err := touchSnapshot(c.opt.DataDir, c.opt.Now()); err != nil {
			c.log.Warn("coordinator client: cannot mark the snapshot current", "err", err)
		}
	}
	if lv := resp.GetLatestVersion(); lv > version {
		c.log.Debug("coordinator client: the coordinator has a newer version (a delta is on its way)",
			"version", version, "latest", lv)
	}
	return nil
}

// memoryBytes is the memory the Go runtime holds from the OS, less what it
// has released back.
func memoryBytes() int64 {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(samples)
	var n [2]uint64
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			n[i] = s.Value.Uint64()
		}
	}
	if n[1] > n[0] {
		return 0
	}
	return int64(n[0] - n[1]) //nolint:gosec // G115: memory sizes fit
}
