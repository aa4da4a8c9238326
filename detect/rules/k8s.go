package rules

import (
	"bytes"
	"strings"
)

// Kubernetes Secret manifests: the base64 values under data:. The values
// have no format of their own, so the rule reads the manifest: from a
// "kind: Secret" hit it finds the YAML document around it and its
// top-level data: block, and reports each value that decodes to printable
// text which is not a placeholder. Keys that name rather than protect
// (namespace, username, ca.crt, tls.crt) are skipped.
func k8s() []Rule {
	return []Rule{
		{
			ID:          "k8s-secret-data",
			Description: "Base64 value in the data: block of a Kubernetes Secret manifest",
			Category:    SECRET,
			Keywords:    []string{"kind: secret"},
			Find:        findK8sSecretData,
			Positives: []Sample{
				textSample("apiVersion: v1\nkind: Secret\nmetadata:\n  name: payments-db\ntype: Opaque\ndata:\n  username: cGF5bWVudHM=\n  password: ", "UmVYd1BPdFFZa0laZWI2SXhT", "\n"),
				textSample("data:\n  namespace: Y2k=\n  token: ", "ZE5tRVo1YmxvVGVGUnkxS1FVZnA1Y0hKblRRZmZsS25QUWlGampiNw==", "\nkind: Secret\nmetadata:\n  name: deployer-token\n"),
				textSample("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: api\ndata:\n  API_KEY: \"", "WW1FWGNpMVhGTlpMaU9iSnRlQkFURw==", "\"\n---\nkind: ConfigMap\n"),
			},
			Negatives: []string{
				"apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  password: Y2hhbmdlbWU=\n  username: YWRtaW4=\n",
				"apiVersion: v1\nkind: Secret\nstringData:\n  password: ${DB_PASSWORD}\n",
				"apiVersion: v1\nkind: ConfigMap\ndata:\n  LOG_LEVEL: ZGVidWc=\n",
				"kind: Secret\ndata:\n  blob: AAECAwQFBgcICQoLDA0ODw==\n",
			},
		},
	}
}

// findK8sSecretData reports the secret values of the Secret manifest around
// the keyword hit [hs, he).
func findK8sSecretData(text []byte, hs, he int) []Span {
	start := bytes.LastIndex(text[:hs], []byte("\n---"))
	if start < 0 {
		start = 0
	}
	end := len(text)
	if i := bytes.Index(text[he:], []byte("\n---")); i >= 0 {
		end = he + i
	}
	doc := text[start:end]
	var out []Span
	inData := false
	for off := 0; off < len(doc); {
		nl := bytes.IndexByte(doc[off:], '\n')
		lineEnd := len(doc)
		if nl >= 0 {
			lineEnd = off + nl
		}
		line := doc[off:lineEnd]
		lineStart := off
		off = lineEnd + 1
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 || trimmed[0] == '#' {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			inData = bytes.Equal(bytes.TrimRight(line, " \t\r"), []byte("data:"))
			continue
		}
		if !inData {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		key := strings.Trim(string(bytes.TrimSpace(line[:colon])), `"'`)
		switch strings.ToLower(key) {
		case "namespace", "username", "user", "ca.crt", "tls.crt", "service-account.name":
			continue
		}
		vs := colon + 1
		for vs < len(line) && (line[vs] == ' ' || line[vs] == '"' || line[vs] == '\'') {
			vs++
		}
		ve := vs
		for ve < len(line) && isBase64Byte(line[ve]) {
			ve++
		}
		v := line[vs:ve]
		if len(v) < 8 || len(v)%4 != 0 {
			continue
		}
		if k8sSecretValue(v) {
			out = append(out, Span{Start: start + lineStart + vs, End: start + lineStart + ve})
		}
	}
	return out
}

func isBase64Byte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

// k8sSecretValue accepts base64 that decodes to printable text of six bytes
// or more that is neither a placeholder nor a certificate.
func k8sSecretValue(v []byte) bool {
	dec, err := decodeBase64(v)
	if err != nil || len(dec) < 6 {
		return false
	}
	for _, c := range dec {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	if bytes.HasPrefix(dec, []byte("-----BEGIN CERTIFICATE")) {
		return false
	}
	return NotPlaceholder(dec)
}
