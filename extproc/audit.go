package extproc

import "time"

// AuditRecord is the metadata of one finished exchange, for Config.Audit
// (the coordinator's audit trail). It never holds a value, a key or a
// body: detections are rule, category, effective action and line.
type AuditRecord struct {
	RequestID  string
	Time       time.Time // when the request arrived
	Org, KeyID string    // empty when the key was refused
	Mode       Mode
	Provider   string
	Model      string
	// Status is what the client got (0 when the stream ended before an
	// answer); Code the error code of a refusal or failure ("ABORTED" for
	// a stream that ended early).
	Status     int
	Code       string
	Duration   time.Duration
	Detections []AuditDetection
}

// AuditDetection is one detection of an AuditRecord.
type AuditDetection struct {
	Rule, Category, Action string
	Line                   int
}

// audit hands the exchange's record to Config.Audit.
func (p *processor) audit(dur time.Duration) {
	if p.s.cfg.Audit == nil {
		return
	}
	rec := AuditRecord{RequestID: p.requestID, Time: p.start, Org: p.key.Org, KeyID: p.key.ID, Mode: p.key.Mode,
		Provider: string(p.info.Provider), Model: p.info.Model, Status: p.status, Code: p.errCode, Duration: dur}
	if !p.done && rec.Code == "" {
		rec.Code = "ABORTED"
	}
	if n := len(p.decision.Detections); n > 0 {
		rec.Detections = make([]AuditDetection, n)
		for i, d := range p.decision.Detections {
			rec.Detections[i] = AuditDetection{Rule: d.Rule, Category: d.Category, Action: d.Action, Line: d.Line}
		}
	}
	p.s.cfg.Audit(rec)
}
