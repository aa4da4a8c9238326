package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// errLengthMismatch: after a BUFFERED body reply, content-length differs
// from the mutated body (Envoy answers 500).
var errLengthMismatch = errors.New("mismatch between content length and the length of the mutated body")

// exchange is one request's trip through ext_proc and the upstream. It is
// owned by the request's goroutine.
type exchange struct {
	g   *Gateway
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	wg  *sync.WaitGroup
	log *slog.Logger

	s          *sideStream // nil once ext_proc processing is over (done or failed open)
	reqBody    extprocfilterv3.ProcessingMode_BodySendMode
	respBody   extprocfilterv3.ProcessingMode_BodySendMode
	reqHeaders headerMap
	metadata   map[string]*structpb.Struct // receiving namespaces only
	route      string                      // provider picked by the (last) route computation
	requestID  string
	provider   string // metrics label
	status     string // metrics label
	started    bool   // response headers went to the client
	rateHdrs   headerMap
}

func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	ctx, span := g.tracer.Start(r.Context(), "gateway.request", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method)))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pm := g.filter.GetProcessingMode()
	x := &exchange{
		g: g, w: sw, r: r, ctx: ctx, wg: &wg, log: g.log,
		reqBody:  pm.GetRequestBodyMode(),
		respBody: pm.GetResponseBodyMode(),
		metadata: map[string]*structpb.Struct{},
		provider: "none",
	}
	defer func() {
		cancel()
		wg.Wait()
		status := x.status
		if status == "" && sw.status != 0 {
			status = strconv.Itoa(sw.status)
		}
		if p := recover(); p != nil {
			span.SetAttributes(attribute.String("aegis.provider", x.provider), attribute.String("aegis.status", "aborted"))
			span.End()
			g.record(r.Context(), start, "aborted", x.provider)
			panic(p)
		}
		if status == "" {
			status = "client_closed"
		}
		span.SetAttributes(attribute.String("aegis.provider", x.provider), attribute.String("aegis.status", status))
		span.End()
		g.record(r.Context(), start, status, x.provider)
	}()
	if g.draining.Load() {
		x.status = "503"
		writeLocalReply(sw, localReply{status: http.StatusServiceUnavailable, code: codeUnavailable, message: "the gateway is shutting down"}, newRequestID())
		return
	}
	x.run()
}

// phase starts a child span for one ext_proc phase (or the upstream
// exchange); the caller ends it.
func (x *exchange) phase(name string) trace.Span {
	_, sp := x.g.tracer.Start(x.ctx, name)
	return sp
}

// abort breaks the client's stream once the response has started: the
// server closes the connection (HTTP/1.1) or resets the stream (HTTP/2),
// so the client never sees a clean end.
func (x *exchange) abort(reason string, err error) {
	x.log.Error("aborting the client stream", "reason", reason, "error", err, "request_id", x.requestID)
	x.status = "aborted"
	panic(http.ErrAbortHandler)
}

func (x *exchange) run() {
	r := x.r
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.RequestURI
	if path == "" || !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI()
	}
	x.reqHeaders = headerMap{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", scheme}}
	x.reqHeaders = x.reqHeaders.appendHTTP(r.Header)
	x.computeRoute()

	s, err := openSideStream(x.ctx, x.g.cfg.ExtProc, x.wg, x.g.msgTimeout, x.g.maxTimeout, x.g.protocolConfig())
	if err != nil {
		if !x.failRequestPhase(err) {
			return
		}
	} else {
		x.s = s
	}

	bodyless := r.ContentLength == 0
	var body io.Reader = r.Body
	var bodyLen int64 = -1
	if bodyless {
		body, bodyLen = nil, 0
	}

	// Request headers.
	if x.s != nil {
		replaced, newBody, ok := x.requestHeadersPhase(bodyless)
		if !ok {
			return
		}
		if replaced {
			body, bodyLen = bytes.NewReader(newBody), int64(len(newBody))
			bodyless = false
		}
	}

	// Request body, BUFFERED.
	if !bodyless && body == r.Body && x.s != nil && x.reqBody == extprocfilterv3.ProcessingMode_BUFFERED {
		buf, ok := x.readRequestBody()
		if !ok {
			return
		}
		newBody, ok := x.requestBodyPhase(buf)
		if !ok {
			return
		}
		body, bodyLen = bytes.NewReader(newBody), int64(len(newBody))
	}

	x.learnRequestID()
	if x.s == nil {
		x.log.Debug("ext_proc processing over before the upstream", "request_id", x.requestID)
	}

	// Rate limit (a filter after ext_proc).
	if lr, limited := x.rateLimit(); limited {
		x.localReplyThroughExtProc(lr)
		return
	}
	// Router.
	up, ok := x.g.upstreams[x.route]
	if !ok {
		x.localReplyThroughExtProc(localReply{status: http.StatusNotFound, code: codeNotFound, message: "no route for this request"})
		return
	}
	x.provider = x.route
	resp, lr, ok := x.forward(up, body, bodyLen)
	if !ok {
		return
	}
	if resp == nil {
		x.localReplyThroughExtProc(lr)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	hm := headerMap{{":status", strconv.Itoa(resp.StatusCode)}}.appendHTTP(resp.Header)
	bodylessResp := resp.ContentLength == 0 || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || r.Method == http.MethodHead
	x.respond(hm, resp.Body, bodylessResp, true)
}

// computeRoute is the HCM route lookup: it runs on arrival and again when
// a request-phase reply clears the route cache.
func (x *exchange) computeRoute() {
	x.route, _ = x.reqHeaders.get(routingHeader)
}

// failRequestPhase handles an ext_proc failure before the upstream: fail
// open (OK close, or failure_mode_allow) and report true, or answer the
// client and report false.
func (x *exchange) failRequestPhase(err error) bool {
	kind := failureKind(err)
	if x.r.Context().Err() != nil {
		return false // the client is gone
	}
	x.g.metrics.extprocFailure(x.ctx, kind)
	if kind == failOKClose || (x.g.filter.GetFailureModeAllow() && kind != failLength) {
		x.failOpen(err)
		return true
	}
	x.log.Error("ext_proc failed", "kind", kind, "error", err, "request_id", x.requestID)
	x.s = nil
	x.writeDirect(x.errorReply(err))
	return false
}

// failOpen is Envoy's behaviour after an OK close (or with
// failure_mode_allow): carry on without ext_proc. It is loud on purpose.
func (x *exchange) failOpen(err error) {
	x.log.Error("ext_proc processing skipped for the rest of this request: continuing WITHOUT ext_proc (fail-open, as Envoy does)",
		"error", err, "request_id", x.requestID, "path", x.r.URL.Path)
	if x.s != nil {
		x.s.closeSend()
	}
	x.s = nil
}

// errorReply maps an ext_proc failure to Envoy's local reply.
func (x *exchange) errorReply(err error) localReply {
	if errors.Is(err, errMessageTimeout) {
		return localReply{status: http.StatusGatewayTimeout, code: codeGatewayTimeout, message: "ext_proc message timeout exceeded"}
	}
	st := http.StatusInternalServerError
	if s := x.g.filter.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		st = int(s.GetCode())
	}
	return localReply{status: st, code: codeInternal, message: "request processing failed"}
}

// writeDirect writes a local reply to the client without ext_proc.
func (x *exchange) writeDirect(lr localReply) {
	if x.started {
		x.abort("local reply after the response started", errors.New(lr.message))
	}
	x.started = true
	id := x.requestID
	if id == "" {
		id = newRequestID()
		x.requestID = id
	}
	x.status = strconv.Itoa(lr.status)
	writeLocalReply(x.w, lr, id)
}

// requestHeadersPhase sends the request headers and applies the reply. It
// reports whether CONTINUE_AND_REPLACE replaced the body (and the new
// body), and false when the exchange is over.
func (x *exchange) requestHeadersPhase(eos bool) (bool, []byte, bool) {
	defer x.phase("ext_proc.request_headers").End()
	sentAt := time.Now()
	err := x.s.send(x.ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: x.reqHeaders.toProto(), EndOfStream: eos},
	}})
	var resp *extprocv3.ProcessingResponse
	if err == nil {
		resp, err = x.s.await(x.ctx, sentAt)
	}
	if err != nil {
		return false, nil, x.failRequestPhase(err)
	}
	x.applyMetadata(resp)
	if ir := resp.GetImmediateResponse(); ir != nil {
		x.immediate(ir)
		return false, nil, false
	}
	hr := resp.GetRequestHeaders()
	if hr == nil {
		return false, nil, x.failRequestPhase(errSpurious)
	}
	x.modeOverride(resp)
	cr := hr.GetResponse()
	replacing := cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	hm, ignored, err := applyHeaderMutation(x.reqHeaders, cr.GetHeaderMutation(), mutationPolicy{
		rules: x.g.filter.GetMutationRules(), replacing: replacing,
		dropContentLength: x.reqBody != extprocfilterv3.ProcessingMode_BUFFERED && x.reqBody != extprocfilterv3.ProcessingMode_NONE,
	})
	if err != nil {
		return false, nil, x.failRequestPhase(err)
	}
	x.noteIgnored(ignored)
	x.reqHeaders = hm
	x.maybeClearRoute(cr)
	if replacing {
		x.reqBody = extprocfilterv3.ProcessingMode_NONE
		if bm := cr.GetBodyMutation(); bm != nil {
			x.reqHeaders = x.reqHeaders.remove("content-length")
			return true, mutatedBody(nil, bm), true
		}
	}
	if !eos && x.reqBody != extprocfilterv3.ProcessingMode_NONE && x.reqBody != extprocfilterv3.ProcessingMode_BUFFERED {
		return false, nil, x.failRequestPhase(fmt.Errorf("%w: request body mode %s not supported by this data plane", errSpurious, x.reqBody))
	}
	return false, nil, true
}

// readRequestBody buffers the client's body up to MaxBodyBytes (413 over
// it, like Envoy's buffer limit).
func (x *exchange) readRequestBody() ([]byte, bool) {
	limit := x.g.cfg.MaxBodyBytes
	if x.r.ContentLength > limit {
		x.writeDirect(localReply{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, message: "request body over the configured limit"})
		return nil, false
	}
	if cl := x.r.ContentLength; cl > 0 {
		// Known length (the server enforces it): one exact allocation.
		buf := make([]byte, cl)
		if _, err := io.ReadFull(x.r.Body, buf); err != nil {
			x.log.Debug("reading the request body failed", "error", err)
			x.status = "client_closed"
			return nil, false // the client is gone or sent a short body: nobody to answer
		}
		return buf, true
	}
	buf := bytes.NewBuffer(make([]byte, 0, 64<<10))
	n, err := buf.ReadFrom(io.LimitReader(x.r.Body, limit+1))
	if err != nil {
		x.log.Debug("reading the request body failed", "error", err)
		x.status = "client_closed"
		return nil, false
	}
	if n > limit {
		x.writeDirect(localReply{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, message: "request body over the configured limit"})
		return nil, false
	}
	return buf.Bytes(), true
}

// requestBodyPhase sends the buffered body and applies the reply.
func (x *exchange) requestBodyPhase(body []byte) ([]byte, bool) {
	defer x.phase("ext_proc.request_body").End()
	x.s.newState()
	sentAt := time.Now()
	err := x.s.send(x.ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true},
	}})
	var resp *extprocv3.ProcessingResponse
	if err == nil {
		resp, err = x.s.await(x.ctx, sentAt)
	}
	if err != nil {
		return body, x.failRequestPhase(err)
	}
	x.applyMetadata(resp)
	if ir := resp.GetImmediateResponse(); ir != nil {
		x.immediate(ir)
		return nil, false
	}
	br := resp.GetRequestBody()
	if br == nil {
		return nil, x.failRequestPhase(errSpurious)
	}
	cr := br.GetResponse()
	if cr.GetBodyMutation().GetStreamedResponse() != nil {
		return nil, x.failRequestPhase(fmt.Errorf("%w: streamed_response outside FULL_DUPLEX_STREAMED", errSpurious))
	}
	hm, ignored, err := applyHeaderMutation(x.reqHeaders, cr.GetHeaderMutation(), mutationPolicy{rules: x.g.filter.GetMutationRules()})
	if err != nil {
		return nil, x.failRequestPhase(err)
	}
	x.noteIgnored(ignored)
	x.reqHeaders = hm
	x.maybeClearRoute(cr)
	if bm := cr.GetBodyMutation(); bm != nil {
		body = mutatedBody(body, bm)
	}
	if err := checkContentLength(x.reqHeaders, len(body)); err != nil {
		return nil, x.failRequestPhase(err)
	}
	return body, true
}

// checkContentLength is Envoy's rule for BUFFERED with header SEND: a
// content-length still present must equal the body.
func checkContentLength(hm headerMap, n int) error {
	v, ok := hm.get("content-length")
	if !ok {
		return nil
	}
	if cl, err := strconv.ParseInt(v, 10, 64); err != nil || cl != int64(n) {
		return errLengthMismatch
	}
	return nil
}

// mutatedBody applies a non-streamed body mutation to body.
func mutatedBody(body []byte, bm *extprocv3.BodyMutation) []byte {
	switch m := bm.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		return m.Body
	case *extprocv3.BodyMutation_ClearBody:
		if m.ClearBody {
			return nil
		}
	}
	return body
}

// maybeClearRoute honours clear_route_cache on the request path: only with
// a header mutation in the same reply, and per route_cache_action.
func (x *exchange) maybeClearRoute(cr *extprocv3.CommonResponse) {
	if cr.GetHeaderMutation() == nil {
		return
	}
	switch x.g.filter.GetRouteCacheAction() {
	case extprocfilterv3.ExternalProcessor_RETAIN:
		return
	case extprocfilterv3.ExternalProcessor_CLEAR:
		x.computeRoute()
		return
	}
	if cr.GetClearRouteCache() && !x.g.filter.GetDisableClearRouteCache() {
		x.computeRoute()
	}
}

// applyMetadata merges dynamic_metadata for the receiving namespaces; the
// rest is dropped, as in Envoy.
func (x *exchange) applyMetadata(resp *extprocv3.ProcessingResponse) {
	dm := resp.GetDynamicMetadata()
	if dm == nil {
		return
	}
	allowed := x.g.filter.GetMetadataOptions().GetReceivingNamespaces().GetUntyped()
	for ns, v := range dm.GetFields() {
		sv := v.GetStructValue()
		if sv == nil || !contains(allowed, ns) {
			x.log.Debug("dynamic metadata dropped", "namespace", ns)
			continue
		}
		cur := x.metadata[ns]
		if cur == nil {
			cur = &structpb.Struct{Fields: map[string]*structpb.Value{}}
			x.metadata[ns] = cur
		}
		for k, fv := range sv.GetFields() {
			cur.Fields[k] = fv
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (x *exchange) metadataString(key string) string {
	return x.metadata[MetadataNamespace].GetFields()[key].GetStringValue()
}

// Metadata keys of the plan's rate limits (extproc's wire contract).
const (
	metaRateLimitPerMinute = "rate_limit_per_minute"
	metaRateLimitPerHour   = "rate_limit_per_hour"
)

// metadataLimit reads a rate limit from the takumo.aegis metadata: a whole
// number of requests, -1 for unlimited. Anything else (absent, not a
// number, fractional, zero, below -1, too large) is 0: no override, the
// configured limit applies.
func (x *exchange) metadataLimit(key string) int {
	v, ok := x.metadata[MetadataNamespace].GetFields()[key].GetKind().(*structpb.Value_NumberValue)
	if !ok {
		return 0
	}
	n := v.NumberValue
	if n != math.Trunc(n) || n < -1 || n > 1e9 {
		return 0
	}
	return int(n)
}

// modeOverride applies a header reply's mode_override when Envoy would:
// allow_mode_override, the override in allowed_override_modes (if any);
// body modes copied as given, DEFAULT header modes unchanged.
func (x *exchange) modeOverride(resp *extprocv3.ProcessingResponse) {
	mo := resp.GetModeOverride()
	if mo == nil || !x.g.filter.GetAllowModeOverride() {
		return
	}
	if allowed := x.g.filter.GetAllowedOverrideModes(); len(allowed) > 0 {
		want := proto.Clone(mo).(*extprocfilterv3.ProcessingMode)
		want.RequestHeaderMode = 0
		ok := false
		for _, a := range allowed {
			c := proto.Clone(a).(*extprocfilterv3.ProcessingMode)
			c.RequestHeaderMode = 0
			if proto.Equal(c, want) {
				ok = true
				break
			}
		}
		if !ok {
			x.log.Debug("mode_override not in allowed_override_modes: ignored")
			return
		}
	}
	x.reqBody = mo.GetRequestBodyMode()
	x.respBody = mo.GetResponseBodyMode()
}

func (x *exchange) noteIgnored(n int) {
	if n > 0 {
		x.log.Debug("header mutations ignored by the mutation rules", "count", n, "request_id", x.requestID)
	}
}

// learnRequestID takes the request id ext_proc set (header or metadata),
// or makes one.
func (x *exchange) learnRequestID() {
	if id, ok := x.reqHeaders.get(headerRequestID); ok && id != "" {
		x.requestID = id
		return
	}
	if id := x.metadataString("request_id"); id != "" {
		x.requestID = id
		return
	}
	if x.requestID == "" {
		x.requestID = newRequestID()
	}
}

// immediate writes an ImmediateResponse as Envoy's local reply: status
// below 200 becomes 200, text/plain unless the headers say otherwise.
func (x *exchange) immediate(ir *extprocv3.ImmediateResponse) {
	if x.s != nil {
		x.s.closeSend()
		x.s = nil
	}
	if x.started {
		x.abort("immediate_response after the response started", nil)
	}
	st := httpStatusCode(int(ir.GetStatus().GetCode()))
	hm := headerMap{}
	if len(ir.GetBody()) > 0 {
		hm = hm.set("content-type", "text/plain")
	}
	hm, _, err := applyHeaderMutation(hm, ir.GetHeaders(), mutationPolicy{rules: x.g.filter.GetMutationRules()})
	if err != nil {
		x.g.metrics.extprocFailure(x.ctx, failMutation)
		x.writeDirect(x.errorReply(err))
		return
	}
	hm = hm.remove(":status").set("content-length", strconv.Itoa(len(ir.GetBody())))
	if id, ok := hm.get(headerRequestID); ok {
		x.requestID = id
	} else {
		if x.requestID == "" {
			x.requestID = newRequestID()
		}
		hm = hm.set(headerRequestID, x.requestID)
	}
	x.started = true
	x.status = strconv.Itoa(st)
	x.writeHeaders(hm, st)
	_, _ = x.w.Write(ir.GetBody())
}

// rateLimit runs the limiter with descriptors from the takumo.aegis
// metadata, falling back to the identity headers. The org's descriptor
// carries the plan's per-minute limit (rate_limit_per_minute) as an
// override, and a second org descriptor its per-hour limit
// (rate_limit_per_hour), when the metadata has them. A "plan" entry names
// the org's plan for a rate-limit service.
func (x *exchange) rateLimit() (localReply, bool) {
	var ds []Descriptor
	for _, d := range []struct{ key, meta, header string }{
		{"org", "org", identityHeaderOrg},
		{"key_id", "key_id", identityHeaderKeyID},
	} {
		v := x.metadataString(d.meta)
		if v == "" {
			v, _ = x.reqHeaders.get(d.header)
		}
		if v == "" {
			continue
		}
		if d.key != "org" {
			ds = append(ds, Descriptor{Key: d.key, Value: v})
			continue
		}
		ds = append(ds, Descriptor{Key: d.key, Value: v,
			Override: RateOverride{Requests: x.metadataLimit(metaRateLimitPerMinute), Unit: time.Minute}})
		if n := x.metadataLimit(metaRateLimitPerHour); n > 0 {
			ds = append(ds, Descriptor{Key: d.key, Value: v, Override: RateOverride{Requests: n, Unit: time.Hour}})
		}
	}
	if len(ds) == 0 {
		return localReply{}, false
	}
	plan := x.metadataString("plan")
	if plan == "" {
		plan, _ = x.reqHeaders.get(identityHeaderPlan)
	}
	if plan != "" {
		ds = append(ds, Descriptor{Key: "plan", Value: plan})
	}
	res, err := x.g.limiter.Check(x.ctx, ds)
	if err != nil {
		x.g.metrics.rateChecks.Add(x.ctx, 1, x.g.metrics.metricResult("error"))
		if x.g.cfg.RateLimitFailClosed {
			x.log.Warn("rate limit check failed; refusing the request (fail closed)", "error", err, "request_id", x.requestID)
			return localReply{status: http.StatusServiceUnavailable, code: codeUnavailable, message: "rate limit service unavailable"}, true
		}
		x.log.Warn("rate limit check failed; letting the request through", "error", err, "request_id", x.requestID)
		return localReply{}, false
	}
	if res.Limit > 0 {
		x.rateHdrs = headerMap{
			{"x-ratelimit-limit", strconv.Itoa(res.Limit)},
			{"x-ratelimit-remaining", strconv.Itoa(res.Remaining)},
			{"x-ratelimit-reset", strconv.Itoa(ceilSeconds(res.Reset, 0))},
		}
	}
	if res.Allowed {
		x.g.metrics.rateChecks.Add(x.ctx, 1, x.g.metrics.metricResult("ok"))
		return localReply{}, false
	}
	x.g.metrics.rateChecks.Add(x.ctx, 1, x.g.metrics.metricResult("over_limit"))
	hdrs := x.rateHdrs.set("x-ratelimit-remaining", "0").set("retry-after", strconv.Itoa(ceilSeconds(res.RetryAfter, 1)))
	x.rateHdrs = nil
	return localReply{status: http.StatusTooManyRequests, code: codeRateLimited, message: "rate limit exceeded", headers: hdrs}, true
}

func ceilSeconds(d time.Duration, atLeast int) int {
	return max(atLeast, int(math.Ceil(d.Seconds())))
}

// forward sends the request upstream. It returns the response, or a local
// reply (502/504) to pass through ext_proc, or ok false when the client is
// gone or the request could not be built (already answered).
func (x *exchange) forward(up *url.URL, body io.Reader, bodyLen int64) (*http.Response, localReply, bool) {
	defer x.phase("upstream.headers").End()
	method, _ := x.reqHeaders.get(":method")
	path, _ := x.reqHeaders.get(":path")
	target, err := url.Parse(up.Scheme + "://" + up.Host + strings.TrimSuffix(up.Path, "/") + path)
	if err != nil || !strings.HasPrefix(path, "/") {
		x.writeDirect(localReply{status: http.StatusBadRequest, code: "BAD_REQUEST", message: "invalid request path"})
		return nil, localReply{}, false
	}
	if bodyLen == 0 {
		body = nil
	}
	out, err := http.NewRequestWithContext(x.ctx, method, target.String(), body)
	if err != nil {
		x.writeDirect(localReply{status: http.StatusBadRequest, code: "BAD_REQUEST", message: "invalid request"})
		return nil, localReply{}, false
	}
	out.Host = up.Host
	for _, h := range x.reqHeaders {
		if strings.HasPrefix(h.key, ":") || strings.HasPrefix(h.key, "x-takumo-") || hopByHop[h.key] || h.key == "host" {
			continue
		}
		out.Header.Add(h.key, h.value)
	}
	out.ContentLength = bodyLen
	if v, ok := x.reqHeaders.get("content-length"); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && (bodyLen < 0 || n == bodyLen) {
			out.ContentLength = n
		}
	} else if bodyLen > 0 {
		out.ContentLength = -1 // Envoy sends chunked when ext_proc removed content-length
	}
	out.Header.Del("Content-Length")
	if out.ContentLength != 0 && body != nil {
		if _, ok := body.(*bytes.Reader); !ok {
			out.Body = io.NopCloser(body) // the client's body streams through; the server closes it
		}
	}
	resp, err := x.g.transport.RoundTrip(out)
	if err == nil {
		return resp, localReply{}, true
	}
	if x.r.Context().Err() != nil {
		x.status = "client_closed"
		return nil, localReply{}, false
	}
	// Log the cause without the URL: a query string can carry a key.
	logged := err
	var ue *url.Error
	if errors.As(err, &ue) {
		logged = ue.Err
	}
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "dial":
		x.g.metrics.upstreamError(x.ctx, "connect")
		x.log.Warn("upstream connect failed", "provider", x.route, "error", logged, "request_id", x.requestID)
		return nil, localReply{status: http.StatusBadGateway, code: codeBadGateway, message: "the provider could not be reached"}, true
	case errors.As(err, &ne) && ne.Timeout():
		x.g.metrics.upstreamError(x.ctx, "timeout")
		x.log.Warn("upstream timed out", "provider", x.route, "error", logged, "request_id", x.requestID)
		return nil, localReply{status: http.StatusGatewayTimeout, code: codeGatewayTimeout, message: "the provider did not answer in time"}, true
	default:
		x.g.metrics.upstreamError(x.ctx, "other")
		x.log.Warn("upstream request failed", "provider", x.route, "error", logged, "request_id", x.requestID)
		return nil, localReply{status: http.StatusBadGateway, code: codeBadGateway, message: "the provider connection failed"}, true
	}
}

// localReplyThroughExtProc sends a later filter's local reply back through
// ext_proc's encode path (or straight out when ext_proc is done).
func (x *exchange) localReplyThroughExtProc(lr localReply) {
	body := errorJSON(lr.code, lr.message, x.requestID)
	hm := lr.headerMap(x.requestID, len(body))
	x.respond(hm, bytes.NewReader(body), false, false)
}

// respond runs the response phases and writes the response.
func (x *exchange) respond(hm headerMap, body io.Reader, eos, fromUpstream bool) {
	if fromUpstream {
		hm = append(hm, x.rateHdrs...)
	}
	if x.s != nil {
		var ok bool
		if hm, body, eos, ok = x.responseHeadersPhase(hm, body, eos); !ok {
			return
		}
	}
	st, err := parseStatus(hm)
	if err != nil {
		x.g.metrics.extprocFailure(x.ctx, failMutation)
		x.writeDirect(x.errorReply(err))
		return
	}
	if eos || x.s == nil || x.respBody == extprocfilterv3.ProcessingMode_NONE {
		if x.s != nil {
			x.s.closeSend()
			x.s = nil
		}
		x.passThrough(hm, st, body, eos)
		return
	}
	if x.respBody == extprocfilterv3.ProcessingMode_BUFFERED {
		x.bufferedResponse(hm, st, body)
		return
	}
	x.streamedResponse(hm, st, body)
}

// responseHeadersPhase sends the response headers (with :status) and
// applies the reply: mode_override first, then the header mutation, then
// CONTINUE_AND_REPLACE. It reports false when the exchange is over.
func (x *exchange) responseHeadersPhase(hm headerMap, body io.Reader, eos bool) (headerMap, io.Reader, bool, bool) {
	sp := x.phase("ext_proc.response_headers")
	defer sp.End()
	x.s.newState()
	if x.respBody == extprocfilterv3.ProcessingMode_STREAMED {
		hm = hm.remove("content-length") // Envoy removes it for the configured STREAMED mode
	}
	sentAt := time.Now()
	err := x.s.send(x.ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: hm.toProto(), EndOfStream: eos},
	}})
	var resp *extprocv3.ProcessingResponse
	if err == nil {
		resp, err = x.s.await(x.ctx, sentAt)
	}
	if err == nil {
		x.applyMetadata(resp)
		if ir := resp.GetImmediateResponse(); ir != nil {
			x.immediate(ir)
			return hm, body, eos, false
		}
		if resp.GetResponseHeaders() == nil {
			err = errSpurious
		}
	}
	if err == nil {
		x.modeOverride(resp)
		if !supportedResponseBodyMode(x.respBody) {
			err = fmt.Errorf("%w: response body mode %s not supported by this data plane", errSpurious, x.respBody)
		}
	}
	if err == nil {
		cr := resp.GetResponseHeaders().GetResponse()
		var ignored int
		hm, ignored, err = applyHeaderMutation(hm, cr.GetHeaderMutation(), mutationPolicy{
			rules:             x.g.filter.GetMutationRules(),
			dropContentLength: x.respBody == extprocfilterv3.ProcessingMode_STREAMED,
		})
		x.noteIgnored(ignored)
		if err == nil && cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
			x.respBody = extprocfilterv3.ProcessingMode_NONE
			if bm := cr.GetBodyMutation(); bm != nil {
				hm = hm.remove("content-length")
				body, eos = bytes.NewReader(mutatedBody(nil, bm)), false
			}
		}
	}
	if err != nil && !x.failResponsePhase(err) {
		return hm, body, eos, false
	}
	return hm, body, eos, true
}

// failResponsePhase handles an ext_proc failure before the response
// started: fail open (true) or answer with Envoy's local reply (false).
func (x *exchange) failResponsePhase(err error) bool {
	kind := failureKind(err)
	if x.r.Context().Err() != nil {
		return false
	}
	x.g.metrics.extprocFailure(x.ctx, kind)
	if kind == failOKClose || (x.g.filter.GetFailureModeAllow() && kind != failLength) {
		x.failOpen(err)
		return true
	}
	x.log.Error("ext_proc failed", "kind", kind, "error", err, "request_id", x.requestID)
	x.s = nil
	x.writeDirect(x.errorReply(err))
	return false
}

func parseStatus(hm headerMap) (int, error) {
	v, _ := hm.get(":status")
	st, err := strconv.Atoi(v)
	if err != nil || st < 100 || st > 999 {
		return 0, fmt.Errorf("%w: invalid :status", errMutation)
	}
	return st, nil
}

// writeHeaders sends the response headers, with X-Aegis-Request-Id.
func (x *exchange) writeHeaders(hm headerMap, st int) {
	if _, ok := hm.get(headerRequestID); !ok {
		if x.requestID == "" {
			x.requestID = newRequestID()
		}
		hm = append(hm, header{headerRequestID, x.requestID})
	}
	h := x.w.Header()
	hm.toHTTP(h)
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: Envoy adds no content-type
	}
	x.started = true
	x.status = strconv.Itoa(st)
	x.w.WriteHeader(st)
}

// flush pushes buffered bytes to the client.
func (x *exchange) flush() error {
	if err := http.NewResponseController(x.w).Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// passThrough writes the body unprocessed, flushing every read.
func (x *exchange) passThrough(hm headerMap, st int, body io.Reader, eos bool) {
	x.writeHeaders(hm, st)
	if eos || body == nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := x.w.Write(buf[:n]); werr != nil {
				return // client gone
			}
			_ = x.flush()
		}
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			if x.r.Context().Err() != nil {
				return
			}
			x.g.metrics.upstreamError(x.ctx, "reset")
			x.abort("upstream body failed", err)
		}
	}
}

// bufferedResponse buffers the response body, sends it, applies the reply
// (headers are still held, so its header mutation applies) and writes it.
func (x *exchange) bufferedResponse(hm headerMap, st int, body io.Reader) {
	defer x.phase("ext_proc.response_body").End()
	limit := x.g.cfg.MaxBodyBytes
	buf, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		if x.r.Context().Err() != nil {
			return
		}
		// Envoy has no response yet to send but the upstream reset: the
		// client's stream is reset too.
		x.g.metrics.upstreamError(x.ctx, "reset")
		x.abort("upstream body failed", err)
	}
	if int64(len(buf)) > limit {
		x.s.closeSend()
		x.s = nil
		x.writeDirect(localReply{status: http.StatusInternalServerError, code: codeInternal, message: "response payload too large"})
		return
	}
	x.s.newState()
	sentAt := time.Now()
	err = x.s.send(x.ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: buf, EndOfStream: true},
	}})
	var resp *extprocv3.ProcessingResponse
	if err == nil {
		resp, err = x.s.await(x.ctx, sentAt)
	}
	if err == nil {
		x.applyMetadata(resp)
		if ir := resp.GetImmediateResponse(); ir != nil {
			x.immediate(ir)
			return
		}
		if resp.GetResponseBody() == nil {
			err = errSpurious
		}
	}
	if err == nil {
		cr := resp.GetResponseBody().GetResponse()
		if cr.GetBodyMutation().GetStreamedResponse() != nil {
			err = fmt.Errorf("%w: streamed_response outside FULL_DUPLEX_STREAMED", errSpurious)
		}
		if err == nil {
			var ignored int
			hm, ignored, err = applyHeaderMutation(hm, cr.GetHeaderMutation(), mutationPolicy{rules: x.g.filter.GetMutationRules()})
			x.noteIgnored(ignored)
		}
		if err == nil {
			if bm := cr.GetBodyMutation(); bm != nil {
				buf = mutatedBody(buf, bm)
			}
			err = checkContentLength(hm, len(buf))
		}
		if err == nil {
			st, err = parseStatus(hm)
		}
	}
	if err != nil {
		if !x.failResponsePhase(err) {
			return
		}
	} else {
		x.s.closeSend()
		x.s = nil
	}
	x.writeHeaders(hm, st)
	_, _ = x.w.Write(buf)
}

// pending is a chunk sent to ext_proc and not yet answered.
type pending struct {
	c      chunk
	sentAt time.Time
}

// chunk is one upstream read on its way through ext_proc.
type chunk struct {
	data []byte
	eos  bool
	err  error // upstream read failure (not io.EOF)
}

// streamedResponse is the STREAMED body mode: headers go out at once, each
// upstream read is one chunk sent without waiting for earlier replies (up
// to maxInFlight), replies are matched 1:1 in order and each reply's body
// is written and flushed immediately. The last chunk carries
// end_of_stream.
func (x *exchange) streamedResponse(hm headerMap, st int, body io.Reader) {
	defer x.phase("ext_proc.response_body_streamed").End()
	x.writeHeaders(hm, st)
	_ = x.flush()
	x.s.newState()

	chunks := make(chan chunk)
	x.wg.Go(func() { readChunks(x.ctx, body, chunks) })

	var queue []pending
	readDone := false
	var lastReply time.Time
	var override time.Duration
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		in := chunks
		if readDone || len(queue) >= maxInFlight {
			in = nil // backpressure
		}
		var timeout <-chan time.Time
		var replies chan recvResult
		if x.s != nil {
			replies = x.s.background()
			if len(queue) > 0 {
				start := queue[0].sentAt
				if lastReply.After(start) {
					start = lastReply
				}
				d := x.g.msgTimeout
				if override > 0 {
					d = override
				}
				timer.Reset(time.Until(start.Add(d)))
				timeout = timer.C
			}
		}
		select {
		case c, ok := <-in:
			if !ok {
				return // unreachable: the eos chunk stops reading
			}
			readDone = c.eos || c.err != nil
			if c.err != nil {
				if x.r.Context().Err() != nil {
					return
				}
				x.g.metrics.upstreamError(x.ctx, "reset")
				x.abort("upstream body failed mid-stream", c.err)
			}
			if x.s == nil { // failed open: straight through
				if !x.writeChunk(c.data) || c.eos {
					return
				}
				continue
			}
			sentAt := time.Now()
			if err := x.s.send(x.ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
				ResponseBody: &extprocv3.HttpBody{Body: c.data, EndOfStream: c.eos},
			}}); err != nil {
				queue = append(queue, pending{c, sentAt})
				if !x.streamFailure(err, queue) {
					return
				}
				queue = nil
				continue
			}
			queue = append(queue, pending{c, sentAt})
		case rr := <-replies:
			if rr.err != nil {
				if !x.streamFailure(classifyRecvErr(rr.err), queue) {
					return
				}
				queue = nil
				continue
			}
			resp := rr.resp
			if resp.GetOverrideMessageTimeout() != nil {
				if d, ok := x.s.overrideTimeout(resp); ok {
					override, lastReply = d, time.Now()
				}
				continue
			}
			x.applyMetadata(resp)
			br := resp.GetResponseBody()
			if br == nil || len(queue) == 0 || br.GetResponse().GetBodyMutation().GetStreamedResponse() != nil {
				if resp.GetImmediateResponse() != nil {
					x.g.metrics.extprocFailure(x.ctx, failSpurious)
					x.abort("immediate_response after the response started", nil)
				}
				x.g.metrics.extprocFailure(x.ctx, failSpurious)
				x.abort("spurious ext_proc reply while streaming", errSpurious)
			}
			head := queue[0]
			queue = queue[1:]
			lastReply, override = time.Now(), 0
			out := head.c.data
			if bm := br.GetResponse().GetBodyMutation(); bm != nil {
				out = mutatedBody(out, bm)
			}
			// Header mutations in STREAMED body replies are ignored: the
			// headers are gone.
			if !x.writeChunk(out) {
				return
			}
			if head.c.eos {
				x.s.closeSend()
				x.s = nil
				return
			}
		case <-timeout:
			x.g.metrics.extprocFailure(x.ctx, failTimeout)
			if x.g.filter.GetFailureModeAllow() {
				x.failOpen(errMessageTimeout)
				if !x.flushQueue(queue) {
					return
				}
				queue = nil
				continue
			}
			x.abort("ext_proc message timeout while streaming", errMessageTimeout)
		case <-x.ctx.Done():
			return
		}
	}
}

// streamFailure handles the end of the side stream while the response
// streams: fail open (deliver the chunks ext_proc never answered, then pass
// the rest through) or abort.
func (x *exchange) streamFailure(err error, queue []pending) bool {
	if x.r.Context().Err() != nil {
		return false
	}
	kind := failureKind(err)
	x.g.metrics.extprocFailure(x.ctx, kind)
	if kind == failOKClose || x.g.filter.GetFailureModeAllow() {
		x.failOpen(err)
		return x.flushQueue(queue)
	}
	x.abort("ext_proc failed while streaming", err)
	return false
}

func (x *exchange) flushQueue(queue []pending) bool {
	for _, p := range queue {
		if !x.writeChunk(p.c.data) {
			return false
		}
		if p.c.eos {
			return false // all delivered
		}
	}
	return true
}

// writeChunk writes and flushes; false when the client is gone.
func (x *exchange) writeChunk(b []byte) bool {
	if len(b) > 0 {
		if _, err := x.w.Write(b); err != nil {
			return false
		}
	}
	return x.flush() == nil
}

// readChunks turns upstream reads into chunks; the last has eos (empty if
// EOF came alone). It ends when the body ends, fails, or ctx is done.
func readChunks(ctx context.Context, body io.Reader, out chan<- chunk) {
	defer close(out)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		c := chunk{data: bytes.Clone(buf[:n])}
		switch {
		case errors.Is(err, io.EOF):
			c.eos = true
		case err != nil:
			c = chunk{err: err}
		case n == 0:
			continue
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.eos || c.err != nil {
			return
		}
	}
}
