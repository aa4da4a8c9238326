// Command aegisbench is the load side of the gateway's performance run
// (bench/run.sh): a fake provider, a bare httputil.ReverseProxy, an
// in-process gateway, and the measurements that compare them (latency one
// request at a time, a Go load generator when wrk is missing, streaming
// throughput per core, peak RSS with bodies in flight).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/takumo/aegis/bench/benchkit"
)

func main() {
	os.Exit(run()) //nolint:forbidigo // main is where the process exits
}

func run() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: aegisbench provider|proxy|gateway|prompt|latency|load|stream|rss [flags]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{
		"provider": provider, "proxy": proxy, "gateway": gatewayCmd, "prompt": prompt,
		"latency": latency, "load": load, "stream": stream, "rss": rss,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "aegisbench: unknown command %q\n", os.Args[1])
		return 2
	}
	if err := f(ctx, os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "aegisbench:", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Println("listening", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func provider(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("provider", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:0", "listen address")
	_ = fs.Parse(args)
	p := benchkit.NewProvider()
	mux := http.NewServeMux()
	mux.Handle("/", p)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "requests %d\ntokens %d\nleaks %d\n", p.Requests.Load(), p.Tokens.Load(), p.Leaks.Load())
	})
	return serve(ctx, *addr, mux)
}

func proxy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "provider URL")
	_ = fs.Parse(args)
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream: need a URL")
	}
	return serve(ctx, *addr, httputil.NewSingleHostReverseProxy(u))
}

// gatewayCmd runs the in-process gateway (benchkit.StartGateway), for when
// the takumo-aegis binary is not at hand.
func gatewayCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:0", "listen address")
	upstream := fs.String("upstream", "", "provider URL")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the gateway's life to `FILE`")
	logs := fs.Bool("log", true, "log each request as JSON on stderr, as takumo-aegis does")
	echo := fs.Bool("echo", false, "drive an ext_proc server that only echoes the body (the ceiling run)")
	_ = fs.Parse(args)
	var log *slog.Logger
	if *logs {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	gw, err := benchkit.StartGatewayWith(*addr, *upstream, benchkit.GatewayOptions{Logger: log, Echo: *echo})
	if err != nil {
		return err
	}
	fmt.Println("listening", strings.TrimPrefix(gw.URL, "http://"))
	<-ctx.Done()
	return gw.Close()
}

func prompt(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("prompt", flag.ExitOnError)
	size := fs.Int("size", 64<<10, "prompt size in bytes")
	streamed := fs.Bool("stream", false, "ask for an event stream")
	_ = fs.Parse(args)
	_, err := os.Stdout.Write(benchkit.Prompt(*size, *streamed))
	return err
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d.Nanoseconds())/1e6, 'f', 3, 64) }

// latency: one request at a time, alternating direct, gateway in a known
// session and gateway as the first request of a new session.
func latency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	direct := fs.String("direct", "", "fake provider URL")
	gw := fs.String("gateway", "", "gateway URL")
	echo := fs.String("echo", "", "URL of a gateway with the echo ext_proc server (aegisbench gateway -echo), measured as a fourth side")
	n := fs.Int("n", 2000, "requests per side")
	warm := fs.Int("warm", 100, "warm-up requests per side")
	_ = fs.Parse(args)
	body := benchkit.Prompt(64<<10, false)
	c := benchkit.NewClient(1)
	run := func(base, via, session string) (time.Duration, error) {
		r, err := benchkit.Post(ctx, c, base, body, via, session, nil)
		if err != nil {
			return 0, err
		}
		if err := benchkit.CheckAnswer(r); err != nil {
			return 0, fmt.Errorf("%s: %w", via, err)
		}
		return r.Elapsed, nil
	}
	var d, same, first, echoed []time.Duration
	for i := range *warm + *n {
		if *echo != "" {
			// "direct": nothing is tokenized on this path, so the planted
			// values reach the provider by design.
			e, err := run(*echo, "direct", "bench-session")
			if err != nil {
				return err
			}
			if i >= *warm {
				echoed = append(echoed, e)
			}
		}
		a, err := run(*direct, "direct", "")
		if err != nil {
			return err
		}
		b, err := run(*gw, "gateway", "bench-session")
		if err != nil {
			return err
		}
		f, err := run(*gw, "gateway", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i))
		if err != nil {
			return err
		}
		if i >= *warm {
			d, same, first = append(d, a), append(same, b), append(first, f)
		}
	}
	d50, d99 := benchkit.Percentile(d, 50), benchkit.Percentile(d, 99)
	g50, g99 := benchkit.Percentile(same, 50), benchkit.Percentile(same, 99)
	f50, f99 := benchkit.Percentile(first, 50), benchkit.Percentile(first, 99)
	fmt.Printf("latency_requests_per_side %d\n", *n)
	fmt.Printf("direct_p50_ms %s\ndirect_p99_ms %s\n", ms(d50), ms(d99))
	fmt.Printf("gateway_p50_ms %s\ngateway_p99_ms %s\n", ms(g50), ms(g99))
	fmt.Printf("added_p50_ms %s\nadded_p99_ms %s\n", ms(g50-d50), ms(g99-d99))
	fmt.Printf("first_of_session_p50_ms %s\nfirst_of_session_p99_ms %s\n", ms(f50), ms(f99))
	fmt.Printf("first_over_later_p50 %.3f\n", float64(f50)/float64(g50))
	if len(echoed) > 0 {
		e50, e99 := benchkit.Percentile(echoed, 50), benchkit.Percentile(echoed, 99)
		fmt.Printf("echo_ceiling_added_p50_ms %s\necho_ceiling_added_p99_ms %s\n", ms(e50-d50), ms(e99-d99))
	}
	return nil
}

// load is a Go load generator: conns connections, each sending the prompt
// back to back for the duration. It prints requests/s.
func load(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	target := fs.String("url", "", "base URL")
	conns := fs.Int("c", 16, "connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	via := fs.String("via", "gateway", "direct or gateway (X-Bench-Path)")
	_ = fs.Parse(args)
	body := benchkit.Prompt(64<<10, false)
	c := benchkit.NewClient(*conns)
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				r, err := benchkit.Post(ctx, c, *target, body, *via, "load", nil)
				switch {
				case err != nil && ctx.Err() != nil:
					return
				case err != nil || r.Status != http.StatusOK:
					bad.Add(1)
				default:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("requests_per_sec %.1f\nerrors %d\n", float64(ok.Load())/el, bad.Load())
	return nil
}

// procCPU returns the user+system CPU time of pid from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// stream pulls an event stream of the given size through the gateway and
// directly, and reports MB/s and, with -pid, MB per CPU-second of the
// gateway process.
func stream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stream", flag.ExitOnError)
	direct := fs.String("direct", "", "fake provider URL")
	gw := fs.String("gateway", "", "gateway URL")
	size := fs.Int("bytes", 256<<20, "stream size")
	pid := fs.Int("pid", 0, "gateway process id (for CPU time)")
	_ = fs.Parse(args)
	body := benchkit.Prompt(64<<10, true)
	c := benchkit.NewClient(1)
	pull := func(base, via string) (int64, time.Duration, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/messages", strings.NewReader(string(body)))
		if err != nil {
			return 0, 0, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", benchkit.TakumoKey)
		req.Header.Set("X-Claude-Code-Session-Id", "bench-stream")
		req.Header.Set(benchkit.HeaderPath, via)
		req.Header.Set(benchkit.HeaderStream, strconv.Itoa(*size))
		var cpu0 time.Duration
		if *pid > 0 {
			cpu0, _ = procCPU(*pid)
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, 0, 0, err
		}
		defer func() { _ = resp.Body.Close() }()
		n, err := io.Copy(io.Discard, resp.Body)
		el := time.Since(start)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%s stream: %w", via, err)
		}
		var cpu time.Duration
		if *pid > 0 {
			c1, _ := procCPU(*pid)
			cpu = c1 - cpu0
		}
		return n, el, cpu, nil
	}
	if _, _, _, err := pull(*gw, "gateway"); err != nil { // warm the session
		return err
	}
	dn, del, _, err := pull(*direct, "direct")
	if err != nil {
		return err
	}
	gn, gel, gcpu, err := pull(*gw, "gateway")
	if err != nil {
		return err
	}
	mb := func(n int64) float64 { return float64(n) / 1e6 }
	fmt.Printf("stream_bytes %d\n", gn)
	fmt.Printf("direct_stream_MBps %.1f\n", mb(dn)/del.Seconds())
	fmt.Printf("gateway_stream_MBps %.1f\n", mb(gn)/gel.Seconds())
	if gcpu > 0 {
		fmt.Printf("gateway_cpu_seconds %.2f\n", gcpu.Seconds())
		fmt.Printf("gateway_stream_MBps_per_core %.1f\n", mb(gn)/gcpu.Seconds())
	}
	return nil
}

// procRSS returns the current and peak resident set of pid in KiB.
func procRSS(pid int) (cur, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("proc status: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			cur = n
		case "VmHWM":
			peak = n
		}
	}
	return cur, peak, nil
}

// rss sends c concurrent requests of size bytes, held by the provider for
// -hold so they are all in flight together, and reports the target
// process's resident set before and at its peak.
func rss(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rss", flag.ExitOnError)
	target := fs.String("url", "", "base URL")
	pid := fs.Int("pid", 0, "process to watch")
	conc := fs.Int("c", 50, "concurrent requests")
	size := fs.Int("size", 1<<20, "body size")
	hold := fs.Duration("hold", 2*time.Second, "provider delay")
	via := fs.String("via", "gateway", "direct or gateway")
	label := fs.String("label", "gateway", "name in the output")
	_ = fs.Parse(args)
	body := benchkit.Prompt(*size, false)
	c := benchkit.NewClient(*conc)
	// One request first: connections, pools, the detector's lazy state.
	r, err := benchkit.Post(ctx, c, *target, body, *via, "rss", nil)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("warm-up: status %d", r.Status)
	}
	idle, _, err := procRSS(*pid)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range *conc {
		wg.Go(func() {
			r, err := benchkit.Post(ctx, c, *target, body, *via, "rss", http.Header{benchkit.HeaderDelay: {hold.String()}})
			if err != nil || r.Status != http.StatusOK {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	_, peak, err := procRSS(*pid)
	if err != nil {
		return err
	}
	fmt.Printf("%s_rss_before_MiB %.1f\n", *label, float64(idle)/1024)
	fmt.Printf("%s_rss_peak_MiB %.1f\n", *label, float64(peak)/1024)
	fmt.Printf("%s_rss_per_inflight_MiB %.2f\n", *label, float64(peak-idle)/1024/float64(*conc))
	fmt.Printf("%s_body_MiB %.2f\n", *label, float64(len(body))/(1<<20))
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d requests failed", n, *conc)
	}
	return nil
}
