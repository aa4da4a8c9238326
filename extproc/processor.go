package extproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/takumo/aegis/detect"
	"github.com/takumo/aegis/keys"
	"github.com/takumo/aegis/llm"
	"github.com/takumo/aegis/policy"
	"github.com/takumo/aegis/token"
)

// stage is where a processor is in the exchange.
type stage int

const (
	stageRequestHeaders stage = iota
	stageRequestBody
	stageResponseHeaders
	stageResponseBody
)

// apiKind is what a request asks of us.
type apiKind int

const (
	apiProxy apiKind = iota
	apiTokenize
	apiDetect
)

// processor handles one stream: one HTTP exchange. It is owned by the
// stream's goroutine and is not safe for concurrent use.
type processor struct {
	// immutable after newProcessor
	s         *Server
	ctx       context.Context
	start     time.Time
	span      trace.Span
	requestID string

	// owned by the stream goroutine
	stage           stage
	done            bool // the exchange is complete: Process may return OK
	respStreamedCfg bool // Envoy's configured response body mode is STREAMED

	api         apiKind
	method      string
	path        string // without the query string
	key         keys.Record
	route       llm.Route
	info        llm.RequestInfo
	hdrSession  string
	reqEncoding string

	vault    *token.Vault
	ownVault bool // a per-request vault: cleared when the exchange ends

	detections  int
	blocked     int
	sessionKind string

	decision policy.Decision // valid once meter or a denial is set
	meter    bool            // the policy allowed the request: record its usage

	status       int  // final status the client gets
	upstream     int  // provider status, 0 before response headers
	upstreamErr  bool // the provider answer becomes a 502
	streamed     bool // response body in STREAMED mode
	respEncoding string
	rw           llm.ResponseRewriter
	bodyDone     bool // the BUFFERED response body has been answered
	errCode      string

	body *[]byte // pooled buffer the pending reply's body lives in (see releaseBody)
}

// releaseBody returns the pooled body buffer once the reply holding it has
// been sent.
func (p *processor) releaseBody() {
	if p.body != nil {
		p.s.bodies.Put(p.body)
		p.body = nil
	}
}

func (s *Server) newProcessor(ctx context.Context) *processor {
	ctx, span := s.ins.tracer.Start(ctx, "aegis.exchange", trace.WithSpanKind(trace.SpanKindServer))
	return &processor{s: s, ctx: ctx, start: time.Now(), span: span, requestID: newRequestID()}
}

// newRequestID returns req_ and 16 random hex characters.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24)
	return "req_" + hex.EncodeToString(b[:])
}

// handle answers one message. A nil response with a nil error sends
// nothing. An error is returned only when no HTTP answer is possible any
// more (the response has started) or the data plane broke the protocol;
// Process turns it into a non-OK status.
func (p *processor) handle(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if pc := req.GetProtocolConfig(); pc != nil {
		if err := p.checkProtocol(pc); err != nil {
			return nil, err
		}
	}
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if p.stage != stageRequestHeaders {
			return nil, outOfOrder("request headers")
		}
		return p.phase("request_headers", func() *extprocv3.ProcessingResponse { return p.requestHeaders(r.RequestHeaders) }), nil
	case *extprocv3.ProcessingRequest_RequestBody:
		if p.stage != stageRequestBody {
			return nil, outOfOrder("request body")
		}
		return p.phase("request_body", func() *extprocv3.ProcessingResponse { return p.requestBody(r.RequestBody) }), nil
	case *extprocv3.ProcessingRequest_RequestTrailers:
		if p.stage != stageResponseHeaders {
			return nil, outOfOrder("request trailers")
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{}}}, nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		if p.stage != stageResponseHeaders {
			return nil, outOfOrder("response headers")
		}
		return p.phase("response_headers", func() *extprocv3.ProcessingResponse { return p.responseHeaders(r.ResponseHeaders) }), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		if p.stage != stageResponseBody {
			return nil, outOfOrder("response body")
		}
		var resp *extprocv3.ProcessingResponse
		var err error
		_, span := p.s.ins.tracer.Start(p.ctx, "aegis.response_body")
		resp, err = p.responseBody(r.ResponseBody)
		span.End()
		return resp, err
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		if p.stage != stageResponseBody {
			return nil, outOfOrder("response trailers")
		}
		return p.responseTrailers()
	default:
		return nil, status.Error(grpccodes.InvalidArgument, "extproc: unsupported processing request")
	}
}

func outOfOrder(what string) error {
	return status.Errorf(grpccodes.FailedPrecondition, "extproc: unexpected %s message", what)
}

// checkProtocol refuses a data plane configured so that secrets could pass
// untokenized: the request body must come BUFFERED.
func (p *processor) checkProtocol(pc *extprocv3.ProtocolConfiguration) error {
	if pc.GetRequestBodyMode() != extprocfilterv3.ProcessingMode_BUFFERED {
		return status.Errorf(grpccodes.FailedPrecondition,
			"extproc: request_body_mode must be BUFFERED, is %s", pc.GetRequestBodyMode())
	}
	switch pc.GetResponseBodyMode() {
	case extprocfilterv3.ProcessingMode_BUFFERED:
	case extprocfilterv3.ProcessingMode_STREAMED:
		p.respStreamedCfg = true
	default:
		return status.Errorf(grpccodes.FailedPrecondition,
			"extproc: response_body_mode must be BUFFERED or STREAMED, is %s", pc.GetResponseBodyMode())
	}
	if pc.GetSendBodyWithoutWaitingForHeaderResponse() {
		return status.Error(grpccodes.FailedPrecondition,
			"extproc: send_body_without_waiting_for_header_response must be false")
	}
	return nil
}

// phase runs f in a child span.
func (p *processor) phase(name string, f func() *extprocv3.ProcessingResponse) *extprocv3.ProcessingResponse {
	_, span := p.s.ins.tracer.Start(p.ctx, "aegis."+name)
	defer span.End()
	return f()
}

// fail answers err with the DESIGN §6 error as an ImmediateResponse and
// ends the exchange.
func (p *processor) fail(err error) *extprocv3.ProcessingResponse {
	resp, r := errorResponse(err, p.requestID)
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		// Refused by us after the decision (provider key, size after
		// tokenization, …): nothing was served, nothing is metered. A
		// provider error was a request made.
		p.meter = false
	}
	p.status = r.Status
	p.errCode = r.Code
	p.done = true
	if r.Status >= 500 {
		p.s.log.LogAttrs(p.ctx, slog.LevelError, "request failed", slog.String("request_id", p.requestID),
			slog.String("code", r.Code), slog.String("error", err.Error()))
	}
	return resp
}

// ---- request headers

func (p *processor) requestHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hd := headers{h.GetHeaders()}
	p.method = hd.Get(":method")
	path := hd.Get(":path")
	p.path = pathOnly(path)
	eos := h.GetEndOfStream()

	switch pathOnly(path) {
	case "/v1/health":
		if p.method != "GET" && p.method != "HEAD" {
			return p.fail(llm.ErrNoRoute)
		}
		p.status = 200
		p.done = true
		return immediate(200, []byte(`{"status":"ok"}`), p.requestID, "aegis_health")
	case "/v1/tokenize", "/v1/detect":
		if p.method != "POST" {
			return p.fail(llm.ErrNoRoute)
		}
		p.api = apiTokenize
		if pathOnly(path) == "/v1/detect" {
			p.api = apiDetect
		}
	}

	rec, err := p.s.authenticate(p.ctx, hd, queryKey(path))
	if err != nil {
		return p.fail(err)
	}
	p.key = rec
	if err := p.readSessionHeader(hd); err != nil {
		return p.fail(err)
	}

	if p.api != apiProxy {
		if eos {
			return p.fail(badRequest(`missing body: send {"content": "…", "filename": "…"}`))
		}
		if err := p.checkBodyHeaders(hd); err != nil {
			return p.fail(err)
		}
		p.stage = stageRequestBody
		return continueRequestHeaders(nil)
	}

	route, err := llm.Resolve(p.method, path, hd)
	if err != nil {
		return p.fail(err)
	}
	route.Path = upstreamPath(route.Path)
	p.route = route
	p.info = llm.RequestInfo{Provider: route.Provider, Model: route.Model, Stream: route.Stream}
	p.span.SetAttributes(attribute.String("aegis.provider", string(route.Provider)),
		attribute.String("aegis.operation", string(route.Operation)))

	if !eos {
		if err := p.checkBodyHeaders(hd); err != nil {
			return p.fail(err)
		}
		p.stage = stageRequestBody
		return continueRequestHeaders(nil)
	}

	// A bodiless request (GET /v1/models): decided now, and the mutations
	// go in this reply.
	if err := p.decide(opProxy, nil, nil); err != nil {
		return p.fail(err)
	}
	if err := p.useVault(""); err != nil {
		return p.fail(err)
	}
	mut, md, err := p.upstreamMutation(-1)
	if err != nil {
		return p.fail(err)
	}
	p.stage = stageResponseHeaders
	resp := continueRequestHeaders(mut)
	resp.DynamicMetadata = md
	return resp
}

func continueRequestHeaders(mut *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	hr := &extprocv3.HeadersResponse{}
	if mut != nil {
		hr.Response = &extprocv3.CommonResponse{HeaderMutation: mut, ClearRouteCache: true}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: hr}}
}

// readSessionHeader takes the session id from X-Takumo-Session, else
// X-Claude-Code-Session-Id.
func (p *processor) readSessionHeader(hd headers) error {
	s := hd.Get(headerSession)
	if s == "" {
		s = hd.Get(headerCCSession)
	}
	if len(s) > maxSessionIDLen {
		return badRequest("session id longer than %d bytes", maxSessionIDLen)
	}
	p.hdrSession = s
	return nil
}

// checkBodyHeaders rejects what can be rejected before the body arrives:
// a declared length over the limit, an encoding or content type we do not
// take.
func (p *processor) checkBodyHeaders(hd headers) error {
	if cl := hd.Get("content-length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return badRequest("invalid content-length")
		}
		if n > p.s.cfg.MaxBodyBytes {
			return fmt.Errorf("%w: content-length %d", ErrBodyTooLarge, n)
		}
	}
	enc, err := checkEncoding(hd.Get("content-encoding"))
	if err != nil {
		return err
	}
	p.reqEncoding = enc
	ct := hd.Get("content-type")
	if mt := mediaType(ct); !isJSON(mt) {
		if mt == "" {
			return badRequest("missing content-type: send application/json")
		}
		return badRequest("unsupported content-type %q: send application/json", safeToken(mt))
	}
	return nil
}

// ---- request body

func (p *processor) requestBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	body := b.GetBody()
	if int64(len(body)) > p.s.cfg.MaxBodyBytes {
		return p.fail(fmt.Errorf("%w: %d bytes", ErrBodyTooLarge, len(body)))
	}
	body, err := decodeBody(body, p.reqEncoding, p.s.cfg.MaxBodyBytes)
	if err != nil {
		return p.fail(err)
	}
	switch p.api {
	case apiTokenize, apiDetect:
		return p.serveAPI(body)
	}
	resp, err := p.proxyBody(body)
	if err != nil {
		return p.fail(err)
	}
	p.stage = stageResponseHeaders
	return resp
}

func (p *processor) proxyBody(body []byte) (*extprocv3.ProcessingResponse, error) {
	req, err := llm.ParseRequest(p.route, body)
	if err != nil {
		return nil, fmt.Errorf("extproc: parse request: %w", err)
	}
	info := req.Info()
	if info.Provider == "" {
		info.Provider = p.route.Provider
	}
	if info.Model == "" {
		info.Model = p.route.Model
	}
	info.Stream = info.Stream || p.route.Stream
	p.info = info
	p.span.SetAttributes(attribute.String("aegis.provider", string(info.Provider)),
		attribute.String("aegis.model", info.Model))
	if err := p.useVault(info.Session); err != nil {
		return nil, err
	}
	buf := p.s.bodies.Get(len(body) + len(body)/8 + 64)
	out, dets, err := req.Tokenize(token.Tokenizer{Engine: p.s.det.engine(p.ctx)}, p.vault, (*buf)[:0])
	if cap(out) == cap(*buf) && len(out) > 0 && &out[0] == &(*buf)[:1][0] {
		p.body = buf // the reply's body lives in buf until Process has sent it
	} else {
		p.s.bodies.Put(buf) // Tokenize outgrew it (or failed): not in the reply
	}
	if err != nil {
		return nil, fmt.Errorf("extproc: tokenize: %w", err)
	}
	p.countDetections(dets)
	in := make([]policy.Detection, len(dets))
	fields := make([]string, len(dets))
	applied := make([]detect.Action, len(dets))
	for i, d := range dets {
		in[i] = policy.Detection{Rule: d.RuleID, Category: string(d.Category), Action: string(d.Action), Line: d.Line}
		fields[i], applied[i] = d.Field, d.Action
	}
	if err := p.decide(opProxy, in, fields); err != nil {
		return nil, err
	}
	if err := checkApplied(p.decision, applied); err != nil {
		return nil, err
	}
	if int64(len(out)) > p.s.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes after tokenization", ErrBodyTooLarge, len(out))
	}
	mut, md, err := p.upstreamMutation(len(out))
	if err != nil {
		return nil, err
	}
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{
				HeaderMutation:  mut,
				BodyMutation:    &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}},
				ClearRouteCache: true,
			},
		}},
		DynamicMetadata: md,
	}, nil
}

func (p *processor) countDetections(dets []llm.Detection) {
	p.detections += len(dets)
	for _, d := range dets {
		p.s.ins.secrets.Add(p.ctx, 1, p.s.ins.attrs.get("category", string(d.Category), "action", string(d.Action)))
	}
	if p.vault != nil {
		p.s.ins.vaultEntries.Record(p.ctx, int64(p.vault.Len()), p.s.ins.attrs.get("scope", p.sessionKind))
	}
}

// useVault picks the request's vault: the session's (header, else the
// body's session hint), else one for this request alone.
func (p *processor) useVault(bodySession string) error {
	sess := p.hdrSession
	if sess == "" {
		sess = bodySession
	}
	org := p.key.Org
	if sess != "" {
		v, err := p.s.cfg.Sessions.Get(org + "/" + sess)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNoVault, err)
		}
		p.vault, p.sessionKind = v, "session"
		return nil
	}
	key := token.DeriveSessionKey(p.s.cfg.OrgSecret(org), org, "request "+p.requestID)
	v, err := token.NewVault(key, token.Limits{})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoVault, err)
	}
	p.vault, p.ownVault, p.sessionKind = v, true, "request"
	return nil
}

// upstreamMutation builds the request header mutation and dynamic metadata
// of the wire contract (doc.go). bodyLen < 0: no body.
func (p *processor) upstreamMutation(bodyLen int) (*extprocv3.HeaderMutation, *structpb.Struct, error) {
	provider := p.info.Provider
	pk, err := p.s.cfg.ProviderKeys.ProviderKey(p.ctx, p.key.Org, provider)
	if err != nil {
		if errors.Is(err, ErrNoProviderKey) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: provider key: %w", ErrKeyStore, err)
	}
	set := []*corev3.HeaderValueOption{
		setHeader(headerProvider, string(provider)),
		setHeader(headerOrg, p.key.Org),
		setHeader(headerKeyID, p.key.ID),
		setHeader(headerPlan, p.decision.Plan),
		setHeader(headerRequestID, p.requestID),
		setHeader(":path", p.route.Path),
		setHeader("accept-encoding", "identity"),
	}
	remove := []string{headerSession}
	if bodyLen >= 0 {
		set = append(set, setHeader("content-length", strconv.Itoa(bodyLen)))
		if p.reqEncoding != "" {
			remove = append(remove, "content-encoding")
		}
	}
	switch provider {
	case llm.Anthropic:
		set = append(set, setHeader("x-api-key", pk))
		remove = append(remove, "authorization", "x-goog-api-key")
	case llm.Gemini:
		set = append(set, setHeader("x-goog-api-key", pk))
		remove = append(remove, "authorization", "x-api-key")
	default: // OpenAI, Mistral
		set = append(set, setHeader("authorization", "Bearer "+pk))
		remove = append(remove, "x-api-key", "x-goog-api-key")
	}
	fields := map[string]any{
		"org": p.key.Org, "key_id": p.key.ID, "plan": p.decision.Plan,
		"provider": string(provider), "model": p.info.Model, "request_id": p.requestID,
	}
	// The plan's rate limits for the data plane's limiter; a decision
	// without them (0) leaves the data plane's configured limits.
	if rl := p.decision.RateLimit; rl.PerMinute != 0 {
		fields[metaRateLimitPerMinute] = rl.PerMinute
	}
	if rl := p.decision.RateLimit; rl.PerHour != 0 {
		fields[metaRateLimitPerHour] = rl.PerHour
	}
	md, err := structpb.NewStruct(map[string]any{metadataNamespace: fields})
	if err != nil {
		return nil, nil, fmt.Errorf("extproc: metadata: %w", err)
	}
	return &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}, md, nil
}

// ---- /v1/tokenize and /v1/detect

type apiRequest struct {
	Content  *string `json:"content"`
	Filename string  `json:"filename"`
}

type apiDetection struct {
	Type     string `json:"type"`
	Category string `json:"category"`
	Action   string `json:"action,omitempty"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Length   int    `json:"length"`
	Token    string `json:"token,omitempty"`
}

type tokenizeResponse struct {
	Content    string         `json:"content"`
	Detections []apiDetection `json:"detections"`
}

type detectResponse struct {
	Detections []apiDetection `json:"detections"`
}

func (p *processor) serveAPI(body []byte) *extprocv3.ProcessingResponse {
	var in apiRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return p.fail(badRequest("malformed JSON: expected {\"content\": \"…\", \"filename\": \"…\"}"))
	}
	if in.Content == nil {
		return p.fail(badRequest("missing required field: content"))
	}
	content := []byte(*in.Content)
	var out []byte
	var err error
	if p.api == apiDetect {
		found := p.s.det.engine(p.ctx).Detect(content)
		in := make([]policy.Detection, len(found))
		fields := make([]string, len(found))
		for i, f := range found {
			line, _ := detect.LineCol(content, f.Start)
			in[i] = policy.Detection{Rule: f.RuleID, Category: string(f.Category), Action: string(f.Action), Line: line}
			fields[i] = "content"
			p.s.ins.secrets.Add(p.ctx, 1, metric.WithAttributes(
				attribute.String("category", string(f.Category)), attribute.String("action", string(f.Action))))
		}
		p.detections = len(found)
		if err := p.decide(opDetect, in, fields); err != nil {
			return p.fail(err)
		}
		// The actions reported are the policy's; what it turns off is
		// not reported.
		resp := detectResponse{Detections: make([]apiDetection, 0, len(found))}
		for i, f := range found {
			a := p.decision.Detections[i].Action
			if a == string(detect.Off) {
				continue
			}
			line, col := detect.LineCol(content, f.Start)
			resp.Detections = append(resp.Detections, apiDetection{Type: f.RuleID, Category: string(f.Category),
				Action: a, Line: line, Column: col, Length: f.Len()})
		}
		out, err = json.Marshal(resp)
	} else {
		if err := p.useVault(""); err != nil {
			return p.fail(err)
		}
		res, terr := token.Tokenizer{Engine: p.s.det.engine(p.ctx)}.Tokenize(p.vault, content)
		if terr != nil {
			return p.fail(fmt.Errorf("extproc: tokenize: %w", terr))
		}
		in := make([]policy.Detection, len(res.Detections))
		fields := make([]string, len(res.Detections))
		applied := make([]detect.Action, len(res.Detections))
		for i, d := range res.Detections {
			line, _ := detect.LineCol(content, d.Start)
			in[i] = policy.Detection{Rule: d.RuleID, Category: string(d.Category), Action: string(d.Action), Line: line}
			fields[i], applied[i] = "content", d.Action
			p.s.ins.secrets.Add(p.ctx, 1, metric.WithAttributes(
				attribute.String("category", string(d.Category)), attribute.String("action", string(d.Action))))
		}
		p.detections = len(res.Detections)
		if err := p.decide(opTokenize, in, fields); err != nil {
			return p.fail(err)
		}
		if err := checkApplied(p.decision, applied); err != nil {
			return p.fail(err)
		}
		resp := tokenizeResponse{Content: string(res.Text), Detections: make([]apiDetection, 0, len(res.Detections))}
		for _, d := range res.Detections {
			line, col := detect.LineCol(content, d.Start)
			resp.Detections = append(resp.Detections, apiDetection{Type: d.RuleID, Category: string(d.Category),
				Line: line, Column: col, Length: d.End - d.Start, Token: d.Token})
		}
		out, err = json.Marshal(resp)
	}
	if err != nil {
		return p.fail(fmt.Errorf("extproc: encode response: %w", err))
	}
	p.status = 200
	p.done = true
	return immediate(200, out, p.requestID, "aegis_api", p.decisionHeaders()...)
}

// ---- response headers

// passThroughStatus lists the provider error statuses that reach the tool
// as they are (with their body rehydrated) when the body is JSON: the ones
// the provider SDKs map to typed errors and retry on with the provider's
// own retry headers (408, 409, 429, 500, 503, 504, Anthropic's 529
// overloaded_error), and the client-side errors whose provider message the
// tool shows to its user (400, 404, 413, 422). Every other error status —
// 401 and 403 (the organisation's provider key was refused: the tool's own
// Takumo key is fine, so passing them through would mislead it), 402, 405,
// 501, 502 and anything unlisted — and any error whose body is not JSON (an
// HTML page from a load balancer) becomes our 502 BAD_GATEWAY with the
// provider's status in the message and its JSON body, if any, in
// error.upstream.
func passThroughStatus(st int) bool {
	switch st {
	case 400, 404, 408, 409, 413, 422, 429, 500, 503, 504, 529:
		return true
	}
	return false
}

func (p *processor) responseHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hd := headers{h.GetHeaders()}
	st, err := strconv.Atoi(hd.Get(":status"))
	if err != nil {
		st = 0
	}
	p.upstream, p.status = st, st
	eos := h.GetEndOfStream()
	ct := hd.Get("content-type")
	mt := mediaType(ct)
	if st >= 400 || st < 100 {
		p.s.ins.upstreamErrors.Add(p.ctx, 1, metric.WithAttributes(
			attribute.String("provider", string(p.info.Provider)), statusAttr(st)))
		// 429 always passes, whatever its body: it may be the data
		// plane's own rate-limit reply, and SDKs must see it to back off.
		if st != 429 && (!passThroughStatus(st) || (!isJSON(mt) && !eos)) {
			p.upstreamErr = true
		}
	}
	ce := hd.Get("content-encoding")
	enc, encErr := checkEncoding(ce)

	if p.upstreamErr {
		if eos || p.respStreamedCfg || encErr != nil {
			// Nothing to read, or nothing we may hold: answer now.
			return p.fail(&UpstreamError{Status: st})
		}
		p.respEncoding = enc
		p.stage = stageResponseBody
		return responseHeadersReply(nil, nil)
	}

	set := append([]*corev3.HeaderValueOption{setHeader(headerRequestID, p.requestID)}, p.decisionHeaders()...)
	if st == 429 && hd.Get("retry-after") == "" {
		// A rate-limit reply from Envoy before the v1.40 API carries
		// x-ratelimit-reset but no Retry-After (extproc-anchors §4.2).
		if reset := hd.Get("x-ratelimit-reset"); reset != "" {
			if n, err := strconv.Atoi(reset); err == nil && n >= 0 {
				set = append(set, setHeader("retry-after", strconv.Itoa(max(n, 1))))
			}
		}
	}
	if eos {
		p.done = true
		return responseHeadersReply(&extprocv3.HeaderMutation{SetHeaders: set}, nil)
	}
	sse := st >= 200 && st < 300 && (mt == "text/event-stream" || llm.StreamedJSON(p.route, st, ct))
	if encErr != nil || (enc != "" && (sse || p.respStreamedCfg)) {
		// We asked for identity; a compressed stream cannot be rewritten.
		return p.fail(&UpstreamError{Status: st})
	}
	p.respEncoding = enc
	p.rw = llm.NewResponseRewriter(p.route, p.info, st, ct, p.vault)
	p.stage = stageResponseBody
	mut := &extprocv3.HeaderMutation{SetHeaders: set}
	var override *extprocfilterv3.ProcessingMode
	switch {
	case sse && !p.respStreamedCfg:
		p.streamed = true
		mut.RemoveHeaders = append(mut.RemoveHeaders, "content-length")
		// Both body modes, always: a zero request mode would mean NONE.
		override = &extprocfilterv3.ProcessingMode{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED,
		}
	case p.respStreamedCfg:
		p.streamed = true
	}
	return responseHeadersReply(mut, override)
}

func responseHeadersReply(mut *extprocv3.HeaderMutation, override *extprocfilterv3.ProcessingMode) *extprocv3.ProcessingResponse {
	hr := &extprocv3.HeadersResponse{}
	if mut != nil {
		hr.Response = &extprocv3.CommonResponse{HeaderMutation: mut}
	}
	return &extprocv3.ProcessingResponse{
		Response:     &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr},
		ModeOverride: override,
	}
}

// ---- response body

func (p *processor) responseBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	chunk := b.GetBody()
	eos := b.GetEndOfStream()
	if p.upstreamErr {
		return p.upstreamErrorBody(chunk), nil
	}
	if p.streamed {
		out, err := p.rw.Write(chunk, eos)
		if err != nil {
			// The headers went downstream: all we can do is reset.
			return nil, status.Error(grpccodes.Internal, "extproc: response rehydration failed")
		}
		if out == nil {
			out = []byte{}
		}
		if eos {
			p.done = true
		}
		return bodyReply(nil, out), nil
	}
	// BUFFERED: the whole body, headers still held.
	if p.rw == nil || p.bodyDone {
		return nil, outOfOrder("second response body")
	}
	body, err := decodeBody(chunk, p.respEncoding, p.s.cfg.MaxBodyBytes*4)
	if err != nil {
		return p.fail(&UpstreamError{Status: p.upstream}), nil
	}
	out, err := p.rw.Write(body, true)
	if err != nil {
		return p.fail(fmt.Errorf("extproc: rehydrate: %w", err)), nil
	}
	p.bodyDone = true
	mut := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		setHeader("content-length", strconv.Itoa(len(out))),
	}}
	if p.respEncoding != "" {
		mut.RemoveHeaders = []string{"content-encoding"}
	}
	if out == nil {
		out = []byte{}
	}
	if eos {
		p.done = true
	}
	return bodyReply(mut, out), nil
}

func bodyReply(mut *extprocv3.HeaderMutation, body []byte) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
			HeaderMutation: mut,
			BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}},
		}},
	}}
}

// upstreamErrorBody turns a provider error the tool cannot use into our
// 502, carrying the provider's JSON body (rehydrated) in error.upstream.
func (p *processor) upstreamErrorBody(chunk []byte) *extprocv3.ProcessingResponse {
	ue := &UpstreamError{Status: p.upstream}
	body, err := decodeBody(chunk, p.respEncoding, p.s.cfg.MaxBodyBytes)
	if err == nil && json.Valid(body) {
		rw := llm.NewResponseRewriter(p.route, p.info, p.upstream, "application/json", p.vault)
		if out, rerr := rw.Write(body, true); rerr == nil && json.Valid(out) {
			ue.Body = out
		}
	}
	return p.fail(ue)
}

func (p *processor) responseTrailers() (*extprocv3.ProcessingResponse, error) {
	if p.streamed && p.rw != nil {
		// No chunk had end_of_stream: whatever the rewriter still holds
		// cannot travel in a trailers reply. Reset rather than truncate.
		out, err := p.rw.Write(nil, true)
		if err != nil || len(out) > 0 {
			return nil, status.Error(grpccodes.DataLoss, "extproc: response ended with trailers while bytes were held back")
		}
	}
	if p.upstreamErr || (!p.streamed && !p.bodyDone) {
		return nil, outOfOrder("response trailers before the body")
	}
	p.done = true
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
		ResponseTrailers: &extprocv3.TrailersResponse{}}}, nil
}

// ---- end of the exchange

// abort records a stream that ended without completing the exchange.
func (p *processor) abort(reason string) {
	if p.done {
		return
	}
	p.errCode = "ABORTED"
	p.span.SetStatus(codes.Error, "aborted")
	p.s.log.LogAttrs(p.ctx, slog.LevelWarn, "exchange aborted", slog.String("request_id", p.requestID),
		slog.String("reason", reason))
}

// finish logs the exchange, records its metrics, ends its span and clears
// a per-request vault.
func (p *processor) finish() {
	dur := time.Since(p.start)
	st := strconv.Itoa(p.status)
	if !p.done {
		st = "aborted"
	}
	provider := string(p.info.Provider)
	p.s.ins.requests.Add(p.ctx, 1, p.s.ins.attrs.get("status", st, "provider", provider))
	p.s.ins.duration.Record(p.ctx, dur.Seconds(), p.s.ins.attrs.get("provider", provider))
	attrs := []slog.Attr{
		slog.String("request_id", p.requestID),
		slog.String("method", p.method),
		slog.String("provider", provider),
		slog.String("model", p.info.Model),
		slog.String("status", st),
		slog.Int("upstream_status", p.upstream),
		slog.String("org", p.key.Org),
		slog.String("key_id", p.key.ID),
		slog.Int("detections", p.detections),
		slog.Int("blocked", p.blocked),
		slog.String("vault", p.sessionKind),
		// Integer microseconds: slog's JSON handler formats a float through
		// encoding/json (reflection), 30 us per request in the profile.
		slog.Int64("duration_us", dur.Microseconds()),
	}
	if p.errCode != "" {
		attrs = append(attrs, slog.String("code", p.errCode))
	}
	if p.rw != nil {
		stats := p.rw.Stats()
		attrs = append(attrs, slog.Int("rehydrated", stats.Replaced), slog.Int("unknown_tokens", stats.Unknown))
	}
	p.s.log.LogAttrs(p.ctx, slog.LevelInfo, "request", attrs...)
	p.audit(dur)
	if p.meter {
		p.recordUsage()
	}
	p.span.SetAttributes(attribute.String("aegis.status", st), attribute.Int("aegis.detections", p.detections))
	if p.status >= 500 {
		p.span.SetStatus(codes.Error, st)
	}
	p.span.End()
	if p.ownVault && p.vault != nil {
		p.vault.Clear()
	}
}
