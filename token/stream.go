package token

// StreamRehydrator rehydrates a stream of chunks (one SSE content stream,
// one tool call's argument deltas) so that the output is the same, byte
// for byte, whatever the chunking: it holds back only a suffix that could
// still grow into a token, never longer than the longest (escaped) token,
// and emits everything else at once.
//
// One StreamRehydrator serves one stream; it is not safe for concurrent
// use. The vault it reads may be shared.
type StreamRehydrator struct {
	v     *Vault   // read only
	esc   Escaping // immutable
	held  []byte   // a suffix that may be the start of a token
	stats Stats
}

// NewStreamRehydrator returns a rehydrator for one stream whose tokens v
// knows, writing values escaped for esc.
func NewStreamRehydrator(v *Vault, esc Escaping) *StreamRehydrator {
	return &StreamRehydrator{v: v, esc: esc}
}

// Write takes the next chunk and returns what can be emitted now, in a new
// slice the caller owns.
func (s *StreamRehydrator) Write(chunk []byte) []byte {
	return s.AppendWrite(nil, chunk)
}

// AppendWrite is Write appending to dst.
func (s *StreamRehydrator) AppendWrite(dst, chunk []byte) []byte {
	data := chunk // never retained: the caller may reuse it
	if len(s.held) > 0 {
		s.held = append(s.held, chunk...)
		data = s.held
	}
	dst, end := appendMatches(dst, s.v, data, s.esc, &s.stats)
	cut := holdFrom(data, end, s.esc.underscoreEscape())
	dst = append(dst, data[end:cut]...)
	// data may be s.held itself; append moves the tail to the front safely.
	s.held = append(s.held[:0], data[cut:]...)
	return dst
}

// Flush ends the stream: it returns the held-back bytes, rehydrated if they
// form a token, as they are otherwise. The rehydrator may be reused for a
// new stream afterwards (its Stats keep counting).
func (s *StreamRehydrator) Flush() []byte {
	return s.AppendFlush(nil)
}

// AppendFlush is Flush appending to dst.
func (s *StreamRehydrator) AppendFlush(dst []byte) []byte {
	dst, end := appendMatches(dst, s.v, s.held, s.esc, &s.stats)
	dst = append(dst, s.held[end:]...)
	s.held = s.held[:0]
	return dst
}

// Held returns how many bytes are held back now.
func (s *StreamRehydrator) Held() int { return len(s.held) }

// Stats returns what the stream did so far.
func (s *StreamRehydrator) Stats() Stats {
	st := s.stats
	st.UnknownTokens = append([]string(nil), st.UnknownTokens...)
	return st
}
