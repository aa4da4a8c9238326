package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/takumo/aegis/detect"
)

// binarySniffLen is how much of a file is looked at for a NUL byte; a NUL
// there makes the file binary and it is skipped (git's heuristic).
const binarySniffLen = 8 << 10

// maxOverlap bounds the context kept on each side of a chunk edge. A secret
// up to this long, with up to this much context before it, is found even
// when it spans the edge of two chunks. Private keys, the longest secrets
// the catalog knows, stay well under it.
const maxOverlap = 64 << 10

// minChunk is the smallest --max-file-size accepted.
const minChunk = 1 << 10

// finding is one secret as reported: where it is, what found it and a
// masked preview. It never holds the secret value.
type finding struct {
	Path     string
	Line     int   // 1-based
	Column   int   // 1-based byte column
	Start    int64 // byte offset in the file
	End      int64 // exclusive
	Rule     string
	Category detect.Category
	Action   detect.Action
	Preview  string // first few characters and "…"; see maskPreview

	// For SARIF: 1-based columns in Unicode code points, end exclusive.
	RuneColumn    int
	EndLine       int
	EndRuneColumn int
}

// fileResult is what scanning one file produced.
type fileResult struct {
	path     string
	findings []finding
	bytes    int64
	binary   bool // skipped: NUL in the first 8 KB
}

// fileScanner scans one input with an engine, reading it in windows of at
// most chunk bytes.
type fileScanner struct {
	engine *detect.Engine
	chunk  int
}

// scan reads r to the end and returns its findings. size is a hint (-1 if
// unknown) used to size the buffer. The caller fills in fileResult.path.
func (s *fileScanner) scan(ctx context.Context, r io.Reader, size int64, display string) (fileResult, error) {
	res := fileResult{path: display}
	capHint := min(s.chunk, 64<<10) // unknown size: grow as needed
	if size >= 0 {
		capHint = int(min(size+1, int64(s.chunk))) // +1 sees a file that grew
	}
	buf, eof, err := fill(make([]byte, 0, capHint), r, s.chunk)
	if err != nil {
		return res, err
	}
	res.bytes = int64(len(buf))
	if bytes.IndexByte(buf[:min(len(buf), binarySniffLen)], 0) >= 0 {
		res.binary = true
		res.bytes = 0
		return res, nil
	}

	margin := min(maxOverlap, s.chunk/4)
	var (
		pos        position
		ws         int64 // file offset of buf[0]
		reportFrom int64 // findings starting before this were reported
	)
	for {
		hi := ws + int64(len(buf)) // report findings starting before hi
		if !eof {
			hi -= int64(margin)
		}
		fs := s.engine.Detect(buf)
		slices.SortFunc(fs, func(a, b detect.Finding) int {
			if a.Start != b.Start {
				return a.Start - b.Start
			}
			return strings.Compare(a.RuleID, b.RuleID)
		})
		for _, f := range fs {
			start := ws + int64(f.Start)
			if start < reportFrom || start >= hi {
				continue
			}
			pos.advance(buf[pos.off-ws : start-ws])
			end := pos
			end.advance(buf[f.Start:f.End])
			res.findings = append(res.findings, finding{
				Path:          display,
				Line:          pos.line + 1,
				Column:        pos.column(),
				Start:         start,
				End:           ws + int64(f.End),
				Rule:          f.RuleID,
				Category:      f.Category,
				Action:        f.Action,
				Preview:       maskPreview(buf[f.Start:f.End]),
				RuneColumn:    pos.runeCol + 1,
				EndLine:       end.line + 1,
				EndRuneColumn: end.runeCol + 1,
			})
		}
		if eof {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// Slide: keep margin bytes of context before hi and everything
		// after it, then read more behind them.
		next := hi - int64(margin)
		if pos.off < next {
			pos.advance(buf[pos.off-ws : next-ws])
		}
		n := copy(buf, buf[next-ws:])
		buf, eof, err = fill(buf[:n], r, s.chunk)
		if err != nil {
			return res, err
		}
		res.bytes += int64(len(buf) - n)
		ws, reportFrom = next, hi
	}
}

// fill reads from r into buf until it holds limit bytes or r ends. eof
// reports that r ended.
func fill(buf []byte, r io.Reader, limit int) ([]byte, bool, error) {
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), 4096), limit-len(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	return buf, false, nil
}

// position tracks line and columns while moving forward through a file.
type position struct {
	off       int64 // file offset
	line      int   // 0-based
	lineStart int64 // file offset of the line's first byte
	runeCol   int   // code points between lineStart and off
}

// advance moves past b, the bytes of the file at [p.off, p.off+len(b)).
func (p *position) advance(b []byte) {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		p.line += bytes.Count(b, []byte{'\n'})
		p.lineStart = p.off + int64(i) + 1
		p.runeCol = utf8.RuneCount(b[i+1:])
	} else {
		p.runeCol += utf8.RuneCount(b)
	}
	p.off += int64(len(b))
}

// column is the 1-based byte column, as detect.LineCol counts it.
func (p *position) column() int { return int(p.off-p.lineStart) + 1 }

// maskPreview shows at most the first four bytes of a secret, and never
// more than a quarter of it, followed by "…". Bytes that are not printable
// UTF-8 show as "?".
func maskPreview(secret []byte) string {
	n := min(4, len(secret)/4)
	for n > 0 && n < len(secret) && !utf8.RuneStart(secret[n]) {
		n-- // do not cut a character in two
	}
	var b strings.Builder
	for _, r := range string(secret[:n]) {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	b.WriteString("…")
	return b.String()
}
