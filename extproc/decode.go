package extproc

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"strings"
)

// checkEncoding validates a request content-encoding header value; only
// identity, gzip and deflate (one of them) are accepted.
func checkEncoding(ce string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(ce))
	switch e {
	case "", "identity":
		return "", nil
	case "gzip", "x-gzip":
		return "gzip", nil
	case "deflate":
		return "deflate", nil
	default:
		return "", badRequest("unsupported content-encoding %q: send identity, gzip or deflate", safeToken(e))
	}
}

// safeToken returns s if it is a short plain token, else a placeholder, so
// that a header value echoed in an error cannot carry anything large or
// odd.
func safeToken(s string) string {
	if len(s) > 32 {
		return "(unrecognised)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return "(unrecognised)"
		}
	}
	return s
}

// decodeBody decompresses body (enc from checkEncoding) into at most limit
// bytes. More than limit bytes of output is ErrBodyTooLarge: memory stays
// bounded by limit whatever the compression ratio (a gzip bomb stops at
// limit+1 bytes read).
func decodeBody(body []byte, enc string, limit int64) ([]byte, error) {
	var r io.Reader
	switch enc {
	case "":
		return body, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, badRequest("content-encoding gzip: the body is not gzip data")
		}
		defer func() { _ = zr.Close() }()
		r = zr
	case "deflate":
		// HTTP deflate is zlib; some clients send raw deflate.
		br := bufio.NewReader(bytes.NewReader(body))
		if hdr, err := br.Peek(2); err == nil && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 && hdr[0]&0x0f == 8 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, badRequest("content-encoding deflate: the body is not deflate data")
			}
			defer func() { _ = zr.Close() }()
			r = zr
		} else {
			fr := flate.NewReader(br)
			defer func() { _ = fr.Close() }()
			r = fr
		}
	default:
		return nil, fmt.Errorf("extproc: unknown encoding %q", enc)
	}
	var out bytes.Buffer
	// A modest initial guess; growth stops at limit+1.
	guess := int64(len(body)) * 4
	if guess > limit {
		guess = limit
	}
	out.Grow(int(guess))
	n, err := out.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, badRequest("content-encoding %s: the body does not decompress", enc)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: decompressed body over %d bytes", ErrBodyTooLarge, limit)
	}
	return out.Bytes(), nil
}
