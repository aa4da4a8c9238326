package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/takumo/aegis/coordinator"
)

// The admin commands are clients of the coordinator's admin HTTP API.
// --coordinator (TAKUMO_COORDINATOR_ADMIN_URL, default
// http://127.0.0.1:8081) picks the coordinator; the admin token comes from
// TAKUMO_ADMIN_TOKEN, --admin-token-file, or admin.token in --data-dir (the
// file a local coordinator generated). --output json prints the API's JSON;
// text is for people.

const defaultAdminURL = "http://127.0.0.1:8081"

type adminFlags struct {
	url, tokenFile, dataDir, output string
}

func addAdminFlags(cmd *cobra.Command, f *adminFlags) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "coordinator", "", "admin API `URL` (default $TAKUMO_COORDINATOR_ADMIN_URL or "+defaultAdminURL+")")
	pf.StringVar(&f.tokenFile, "admin-token-file", "", "`file` holding the admin token (default $TAKUMO_ADMIN_TOKEN, else admin.token in --data-dir)")
	pf.StringVar(&f.dataDir, "data-dir", "data", "a local coordinator's data `directory`, for its admin.token")
	pf.StringVarP(&f.output, "output", "o", "text", "output `format`: text or json")
}

type adminClient struct {
	base, token string
	hc          *http.Client
	json        bool
	out         io.Writer
}

func (f *adminFlags) client(cmd *cobra.Command) (*adminClient, error) {
	base := f.url
	if base == "" {
		base = os.Getenv("TAKUMO_COORDINATOR_ADMIN_URL")
	}
	if base == "" {
		base = defaultAdminURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--coordinator %q: want an http(s) URL such as %s", base, defaultAdminURL)}
	}
	if f.output != "text" && f.output != "json" {
		return nil, &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--output %q: want text or json", f.output)}
	}
	token := os.Getenv("TAKUMO_ADMIN_TOKEN")
	if f.tokenFile != "" || token == "" {
		file := f.tokenFile
		if file == "" {
			file = filepath.Join(f.dataDir, coordinator.AdminTokenFile)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("no admin token: set TAKUMO_ADMIN_TOKEN or --admin-token-file (%w)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	for _, c := range token {
		if c <= ' ' || c > '~' {
			return nil, errors.New("the admin token holds spaces, line breaks or non-ASCII characters; check TAKUMO_ADMIN_TOKEN or the token file")
		}
	}
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, json: f.output == "json",
		hc: &http.Client{Timeout: 30 * time.Second}, out: cmd.OutOrStdout()}, nil
}

// call sends a request and decodes the answer into out; an API error
// becomes an error with its code and message.
func (c *adminClient) call(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("coordinator at %s: %w", c.base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("coordinator answered %s", resp.Status)
	}
	if out != nil && len(b) > 0 {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = b
			return nil
		}
		return json.Unmarshal(b, out)
	}
	return nil
}

// show prints raw JSON with --output json, else calls text.
func (c *adminClient) show(raw json.RawMessage, text func(w *tabwriter.Writer) error) error {
	if c.json {
		_, err := c.out.Write(append(bytes.TrimSpace(raw), '\n'))
		return err
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	if err := text(tw); err != nil {
		return err
	}
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *app) keysCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "keys", Short: "Create, list, disable, enable and revoke Takumo API keys (admin API)", Args: cobra.NoArgs}
	addAdminFlags(cmd, &f)
	var org, name, scopes, mode string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create an API key; the key is printed once",
		Example: "  takumo-aegis keys create --org acme --name ci --scopes shield:write --mode test --output json",
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if org == "" || mode == "" {
				return usagef(cmd, "keys create: --org and --mode are required")
			}
			var raw json.RawMessage
			body := map[string]any{"org": org, "name": name, "scopes": splitList(scopes), "mode": mode}
			if err := c.call(cmd.Context(), "POST", "/v1/keys", body, &raw); err != nil {
				return err
			}
			var k coordinator.KeyJSON
			if err := json.Unmarshal(raw, &k); err != nil {
				return err
			}
			if c.json {
				return c.show(raw, nil)
			}
			_, err = fmt.Fprintf(c.out, "Created key %s for org %s (%s, scopes %s).\nThe key is shown only now; store it safely:\n\n%s\n",
				k.ID, k.Org, k.Mode, strings.Join(k.Scopes, ","), k.Key)
			return err
		}),
	}
	create.Flags().StringVar(&org, "org", "", "the `org` the key belongs to")
	create.Flags().StringVar(&name, "name", "", "a `name` for people")
	create.Flags().StringVar(&scopes, "scopes", "shield:write", "comma-separated `scopes`")
	create.Flags().StringVar(&mode, "mode", "", "`test` or live")
	var listOrg string
	list := &cobra.Command{
		Use: "list", Short: "List API keys (never the keys themselves)", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/v1/keys?org="+url.QueryEscape(listOrg), nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var r struct{ Keys []coordinator.KeyJSON }
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintln(w, "ID\tORG\tNAME\tMODE\tSTATE\tSCOPES\tCREATED")
				for _, k := range r.Keys {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Org, k.Name, k.Mode, k.State, strings.Join(k.Scopes, ","), ts(k.CreatedAt))
				}
				return nil
			})
		}),
	}
	list.Flags().StringVar(&listOrg, "org", "", "only this `org`'s keys")
	cmd.AddCommand(create, list)
	for _, action := range []string{"disable", "enable", "revoke"} {
		short := map[string]string{"disable": "Disable a key (can be enabled again)", "enable": "Enable a disabled key",
			"revoke": "Revoke a key for good (every gateway refuses it within seconds)"}[action]
		cmd.AddCommand(&cobra.Command{
			Use: action + " KEY_ID", Short: short, Args: exactArgs(1, "a key id"),
			RunE: runE(func(cmd *cobra.Command, args []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "POST", "/v1/keys/"+url.PathEscape(args[0])+"/"+action, nil, &raw); err != nil {
					return err
				}
				return c.show(raw, func(w *tabwriter.Writer) error {
					var k coordinator.KeyJSON
					if err := json.Unmarshal(raw, &k); err != nil {
						return err
					}
					_, err := fmt.Fprintf(w, "key %s is %s\n", k.ID, k.State)
					return err
				})
			}),
		})
	}
	return cmd
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *app) joinKeysCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "join-keys", Short: "Create, list and revoke gateway join keys (admin API)", Args: cobra.NoArgs}
	addAdminFlags(cmd, &f)
	var name, env, org string
	create := &cobra.Command{
		Use: "create", Short: "Create a join key; it is printed once", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "POST", "/v1/join-keys", map[string]string{"name": name, "environment": env, "org": org}, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var j coordinator.JoinKeyJSON
				if err := json.Unmarshal(raw, &j); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "Created join key %s (%s). It is shown only now; give it to the gateway as TAKUMO_JOIN_KEY:\n\n%s\n", j.ID, j.Name, j.JoinKey)
				return err
			})
		}),
	}
	create.Flags().StringVar(&name, "name", "", "a `name` for people (required)")
	create.Flags().StringVar(&env, "environment", "", "the `environment` (prod, staging, …)")
	create.Flags().StringVar(&org, "org", "", "restrict gateways joining with it to this `org`")
	list := &cobra.Command{
		Use: "list", Short: "List join keys (never the keys themselves)", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/v1/join-keys", nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var r struct {
					JoinKeys []coordinator.JoinKeyJSON `json:"join_keys"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintln(w, "ID\tNAME\tENVIRONMENT\tORG\tCREATED\tREVOKED")
				for _, j := range r.JoinKeys {
					rev := "-"
					if j.RevokedAt != nil {
						rev = ts(*j.RevokedAt)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.Environment, j.Org, ts(j.CreatedAt), rev)
				}
				return nil
			})
		}),
	}
	revoke := &cobra.Command{
		Use: "revoke JOIN_KEY_ID", Short: "Revoke a join key and disconnect its gateways", Args: exactArgs(1, "a join key id"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "POST", "/v1/join-keys/"+url.PathEscape(args[0])+"/revoke", nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				_, err := fmt.Fprintf(w, "join key %s revoked; its gateways are disconnected\n", args[0])
				return err
			})
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func (a *app) fleetCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "fleet", Short: "Show the gateways registered with the coordinator (admin API)", Args: cobra.NoArgs}
	addAdminFlags(cmd, &f)
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List gateways with their health", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/v1/fleet", nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var r struct {
					Latest   uint64                    `json:"latest_version"`
					Gateways []coordinator.GatewayJSON `json:"gateways"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintln(w, "ID\tNAME\tSTATUS\tMODE\tVERSION\tSNAPSHOT\tSESSIONS\tLAST SEEN")
				for _, g := range r.Gateways {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%s\n", g.ID, g.Name, g.Status, g.Mode, g.Version,
						g.SnapshotVersion, r.Latest, g.ActiveSessions, ts(g.LastSeen))
				}
				return nil
			})
		}),
	})
	return cmd
}

func (a *app) auditCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "audit", Short: "Read audit events (metadata only, never values) (admin API)", Args: cobra.NoArgs}
	addAdminFlags(cmd, &f)
	var (
		org    string
		limit  int
		follow bool
		every  time.Duration
	)
	tail := &cobra.Command{
		Use: "tail", Short: "Print the latest audit events; --follow keeps printing new ones", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var after int64
			if !follow {
				// The last --limit events: find the newest id first.
				var r struct {
					Events []coordinator.AuditJSON `json:"events"`
				}
				if err := c.call(cmd.Context(), "GET", fmt.Sprintf("/v1/audit?org=%s&limit=10000", url.QueryEscape(org)), nil, &r); err != nil {
					return err
				}
				if n := len(r.Events); n > limit {
					after = r.Events[n-limit-1].ID
				}
			}
			for {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "GET", fmt.Sprintf("/v1/audit?org=%s&after=%d&limit=%d", url.QueryEscape(org), after, limit), nil, &raw); err != nil {
					return err
				}
				var r struct {
					Events    []coordinator.AuditJSON `json:"events"`
					NextAfter int64                   `json:"next_after"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				after = r.NextAfter
				if err := printAudit(c, r.Events); err != nil {
					return err
				}
				if !follow {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
			}
		}),
	}
	tail.Flags().StringVar(&org, "org", "", "only this `org`'s events")
	tail.Flags().IntVarP(&limit, "limit", "n", 20, "how many `events`")
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	tail.Flags().DurationVar(&every, "interval", 2*time.Second, "with --follow, poll every `duration`")
	cmd.AddCommand(tail)
	return cmd
}

func printAudit(c *adminClient, evs []coordinator.AuditJSON) error {
	for _, e := range evs {
		if c.json {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(c.out, "%s\n", b); err != nil {
				return err
			}
			continue
		}
		var dets []string
		for _, d := range e.Detections {
			dets = append(dets, fmt.Sprintf("%s/%s:%s@%d", d.Category, d.Rule, d.Action, d.Line))
		}
		if _, err := fmt.Fprintf(c.out, "%s %s %s org=%s key=%s %s %s status=%d %dus detections=[%s]\n", ts(e.Time), e.RequestID,
			e.GatewayID, e.Org, e.KeyID, e.Provider, e.Model, e.Status, e.DurationUS, strings.Join(dets, " ")); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) usageCommand() *cobra.Command {
	var f adminFlags
	var org, month string
	cmd := &cobra.Command{
		Use: "usage", Short: "Show requests and credits per org and key for a month (admin API)", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/v1/usage?org="+url.QueryEscape(org)+"&month="+url.QueryEscape(month), nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var r struct {
					Month string                  `json:"month"`
					Usage []coordinator.UsageJSON `json:"usage"`
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintf(w, "MONTH %s\nORG\tKEY\tMODE\tREQUESTS\tCREDITS\n", r.Month)
				for _, u := range r.Usage {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\n", u.Org, u.KeyID, u.Mode, u.Requests, u.Credits)
				}
				return nil
			})
		}),
	}
	addAdminFlags(cmd, &f)
	cmd.Flags().StringVar(&org, "org", "", "only this `org`")
	cmd.Flags().StringVar(&month, "month", "", "the `month` (YYYY-MM; default this month, UTC)")
	return cmd
}

func (a *app) policiesCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "policies", Short: "Get or set the policy the coordinator pushes to gateways (admin API)", Args: cobra.NoArgs}
	addAdminFlags(cmd, &f)
	get := &cobra.Command{
		Use: "get", Short: "Show the current policy revision and data", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/v1/policies", nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var p coordinator.PolicyJSON
				if err := json.Unmarshal(raw, &p); err != nil {
					return err
				}
				fmt.Fprintf(w, "revision\t%s\nversion\t%d\n", p.Revision, p.Version)
				if p.BundleSHA256 != "" {
					fmt.Fprintf(w, "bundle sha256\t%s\n", p.BundleSHA256)
				}
				if len(p.Data) > 0 {
					var buf bytes.Buffer
					if err := json.Indent(&buf, p.Data, "", "  "); err != nil {
						return err
					}
					fmt.Fprintf(w, "data\n%s\n", buf.String())
				}
				return nil
			})
		}),
	}
	var revision, dataFile, bundleFile string
	set := &cobra.Command{
		Use:   "set",
		Short: "Replace the policy: data (JSON or YAML, merged over the embedded defaults) and/or an OPA bundle",
		Example: `  takumo-aegis policies set --revision 2026-11-29 --data plans.yaml
  takumo-aegis policies set --revision r7 --bundle policy.tar.gz`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if revision == "" || (dataFile == "" && bundleFile == "") {
				return usagef(cmd, "policies set: --revision and at least one of --data and --bundle are required")
			}
			body := coordinator.PolicyJSON{Revision: revision}
			if dataFile != "" {
				if body.Data, err = readDataFile(dataFile); err != nil {
					return err
				}
			}
			if bundleFile != "" {
				if body.Bundle, err = os.ReadFile(bundleFile); err != nil {
					return err
				}
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "PUT", "/v1/policies", body, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var p coordinator.PolicyJSON
				if err := json.Unmarshal(raw, &p); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "policy %s set (version %d); gateways receive it within a second\n", p.Revision, p.Version)
				return err
			})
		}),
	}
	set.Flags().StringVar(&revision, "revision", "", "a `name` for this revision")
	set.Flags().StringVar(&dataFile, "data", "", "policy data `file` (JSON or YAML)")
	set.Flags().StringVar(&bundleFile, "bundle", "", "OPA bundle `file` (.tar.gz)")
	cmd.AddCommand(get, set)
	return cmd
}

// readDataFile reads JSON or YAML policy data and returns it as JSON.
func readDataFile(path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if json.Valid(b) {
		return b, nil
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: neither JSON nor YAML: %w", path, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New(path + ": policy data must be a mapping")
	}
	return json.Marshal(m)
}

func (a *app) orgsCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "orgs", Short: "Set, list and delete organizations and their plans (admin API)", Args: cobra.NoArgs}
	addAdminFlags(cmd, &f)
	var plan string
	var seats int
	set := &cobra.Command{
		Use: "set ORG", Short: "Create or change an org's plan and seats", Args: exactArgs(1, "an org id"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "PUT", "/v1/orgs/"+url.PathEscape(args[0]), map[string]any{"plan": plan, "seats": seats}, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				_, err := fmt.Fprintf(w, "org %s: plan %s, %d seats\n", args[0], plan, max(seats, 1))
				return err
			})
		}),
	}
	set.Flags().StringVar(&plan, "plan", "", "`plan` (free, developer, pro, enterprise or one from the policy data)")
	set.Flags().IntVar(&seats, "seats", 1, "`seats`")
	list := &cobra.Command{
		Use: "list", Short: "List orgs", Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/v1/orgs", nil, &raw); err != nil {
				return err
			}
			return c.show(raw, func(w *tabwriter.Writer) error {
				var r struct {
					Orgs []struct {
						ID, Plan string
						Seats    int
					}
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintln(w, "ORG\tPLAN\tSEATS")
				for _, o := range r.Orgs {
					fmt.Fprintf(w, "%s\t%s\t%d\n", o.ID, o.Plan, o.Seats)
				}
				return nil
			})
		}),
	}
	del := &cobra.Command{
		Use: "delete ORG", Short: "Delete an org", Args: exactArgs(1, "an org id"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := c.call(cmd.Context(), "DELETE", "/v1/orgs/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.out, "org %s deleted\n", args[0])
			return err
		}),
	}
	cmd.AddCommand(set, list, del)
	return cmd
}
