package rules

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math"
	"strconv"
	"strings"
)

// Entropy returns the Shannon entropy of b in bits per byte.
func Entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, k := range counts {
		if k == 0 {
			continue
		}
		p := float64(k) / n
		h -= p * math.Log2(p)
	}
	return h
}

// The validators below take the secret a rule's pattern reported and say
// whether it is plausible. They never allocate more than the decoded secret
// and never keep it.

// All returns a validator that accepts a secret only when every v does.
func All(vs ...func([]byte) bool) func([]byte) bool {
	return func(b []byte) bool {
		for _, v := range vs {
			if !v(b) {
				return false
			}
		}
		return true
	}
}

// MinEntropy returns a validator that accepts secrets whose Shannon entropy
// is at least bits per byte. Unlike Rule.MinEntropy it composes with other
// validators.
func MinEntropy(bits float64) func([]byte) bool {
	return func(b []byte) bool { return Entropy(b) >= bits }
}

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// base62CRC32 encodes the IEEE CRC32 of b in six base62 digits, most
// significant first, zero-padded: the checksum scheme of GitHub and npm tokens.
func base62CRC32(b []byte) [6]byte {
	n := crc32.ChecksumIEEE(b)
	var out [6]byte
	for i := 5; i >= 0; i-- {
		out[i] = base62Alphabet[n%62]
		n /= 62
	}
	return out
}

// GitHubChecksum validates tokens of the form prefix_ + 30 random base62
// characters + 6 base62 characters of CRC32 over those 30 (GitHub ghp_, gho_,
// ghu_, ghs_, ghr_ and npm_ tokens).
func GitHubChecksum(secret []byte) bool {
	i := bytes.LastIndexByte(secret, '_')
	if i < 0 {
		return false
	}
	body := secret[i+1:]
	if len(body) != 36 {
		return false
	}
	for _, c := range body {
		if strings.IndexByte(base62Alphabet, c) < 0 {
			return false
		}
	}
	sum := base62CRC32(body[:30])
	return bytes.Equal(sum[:], body[30:])
}

// AWSKeyID validates an AWS access key id (AKIA…, ASIA…): the 16 base32
// characters after the 4-letter prefix encode the account id in bits 7–46 of
// their first 6 bytes, and an account id has at most 12 decimal digits.
// Documentation examples ending in EXAMPLE are refused.
func AWSKeyID(secret []byte) bool {
	if len(secret) != 20 || bytes.HasSuffix(secret, []byte("EXAMPLE")) {
		return false
	}
	dec, err := base32.StdEncoding.DecodeString(string(secret[4:]))
	if err != nil || len(dec) < 6 {
		return false
	}
	var v uint64
	for _, c := range dec[:6] {
		v = v<<8 | uint64(c)
	}
	account := (v & 0x7fffffffff80) >> 7
	return account <= 999999999999
}

// AzureStorageKey validates an Azure storage account key: 88 characters of
// standard base64 that decode to exactly 64 bytes.
func AzureStorageKey(secret []byte) bool {
	if len(secret) != 88 {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(string(secret))
	return err == nil && len(dec) == 64
}

// Base64Decodes reports whether secret is valid standard or URL-safe base64,
// padded or not.
func Base64Decodes(secret []byte) bool {
	_, err := decodeBase64(secret)
	return err == nil
}

func decodeBase64(b []byte) ([]byte, error) {
	s := string(b)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if dec, err := enc.DecodeString(s); err == nil {
			return dec, nil
		}
	}
	return nil, errors.New("not base64")
}

// JWTHeader validates a JSON Web Token: three dot-separated base64url
// segments whose header decodes to a JSON object with a string "alg" other
// than "none" and whose payload decodes to a JSON object.
func JWTHeader(secret []byte) bool {
	parts := bytes.Split(secret, []byte("."))
	if len(parts) != 3 || len(parts[2]) == 0 {
		return false
	}
	var header map[string]any
	if !decodeJSONSegment(parts[0], &header) {
		return false
	}
	alg, ok := header["alg"].(string)
	if !ok || alg == "" || strings.EqualFold(alg, "none") {
		return false
	}
	var payload map[string]any
	return decodeJSONSegment(parts[1], &payload)
}

func decodeJSONSegment(seg []byte, v any) bool {
	dec, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(seg), "="))
	if err != nil {
		return false
	}
	return json.Unmarshal(dec, v) == nil
}

// BasicAuth validates the credentials of an HTTP Basic authorization:
// base64 that decodes to printable "user:password" with a password that is
// not a placeholder.
func BasicAuth(secret []byte) bool {
	dec, err := decodeBase64(secret)
	if err != nil {
		return false
	}
	for _, c := range dec {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	i := bytes.IndexByte(dec, ':')
	if i < 0 || i == len(dec)-1 {
		return false
	}
	return NotPlaceholder(dec[i+1:])
}

// DiscordToken validates a Discord bot token: its first segment is the
// base64 of the bot's numeric user id (a snowflake of 17 to 20 digits).
func DiscordToken(secret []byte) bool {
	i := bytes.IndexByte(secret, '.')
	if i < 0 {
		return false
	}
	dec, err := decodeBase64(secret[:i])
	if err != nil || len(dec) < 17 || len(dec) > 20 {
		return false
	}
	for _, c := range dec {
		if c < '0' || c > '9' {
			return false
		}
	}
	return dec[0] != '0'
}

// Snowflake validates a Discord-style id: 17 to 20 digits whose timestamp
// (the bits above 22, in milliseconds since 2015-01-01) is not after 2100.
func Snowflake(secret []byte) bool {
	if len(secret) < 17 || len(secret) > 20 {
		return false
	}
	n, err := strconv.ParseUint(string(secret), 10, 64)
	if err != nil {
		return false
	}
	const discordEpochMS = 1420070400000
	const year2100MS = 4102444800000
	return n>>22 > 0 && n>>22 < year2100MS-discordEpochMS
}

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// Bech32 validates a bech32 string (BIP 173) such as an age secret key
// (AGE-SECRET-KEY-1…): a single-case human-readable part, the separator 1,
// data characters and a valid 6-character checksum.
func Bech32(secret []byte) bool {
	s := strings.ToLower(string(secret))
	if s != string(secret) && strings.ToUpper(string(secret)) != string(secret) {
		return false
	}
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || sep+7 > len(s) {
		return false
	}
	hrp, data := s[:sep], s[sep+1:]
	values := make([]byte, 0, 2*len(hrp)+1+len(data))
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]>>5)
	}
	values = append(values, 0)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]&31)
	}
	for i := 0; i < len(data); i++ {
		d := strings.IndexByte(bech32Charset, data[i])
		if d < 0 {
			return false
		}
		values = append(values, byte(d)) //nolint:gosec // G115: d indexes the 32-letter charset, 0..31
	}
	return bech32Polymod(values) == 1
}

// placeholderFragments are fragments that mark a value as an example or a
// template rather than a credential.
var placeholderFragments = []string{
	"example", "changeme", "change_me", "change-me", "placeholder", "your_", "your-",
	"yourpass", "yourtoken", "yourkey", "redacted", "dummy", "sample", "xxxxx", "*****",
	"....", "<", ">", "${", "{{", "}}", "%s", "%(", "$(", "__takumo_", "process.env",
	"os.environ", "getenv", "env(", "secretkeyref", "replace_me", "insert_", "todo",
}

// NotPlaceholder refuses values that are templates or examples rather than
// credentials: ${VAR}, {{ .Values.x }}, <your-token>, changeme, xxxx, ****,
// values made of one repeated character, and our own tokens.
func NotPlaceholder(secret []byte) bool {
	if len(secret) == 0 {
		return false
	}
	if secret[0] == '$' || secret[0] == '%' || secret[0] == '{' || secret[0] == '<' {
		return false
	}
	same := true
	for _, c := range secret[1:] {
		if c != secret[0] {
			same = false
			break
		}
	}
	if same {
		return false
	}
	lower := strings.ToLower(string(secret))
	for _, w := range placeholderFragments {
		if strings.Contains(lower, w) {
			return false
		}
	}
	for _, w := range []string{"password", "passwd", "secret", "pass", "pwd", "test", "admin", "root", "none", "null", "true", "false", "guest"} {
		if lower == w {
			return false
		}
	}
	return true
}

// URLPassword validates the password of a URL with user information
// (scheme://user:password@host): it must be present and not a placeholder.
func URLPassword(secret []byte) bool {
	s := string(secret)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	at := strings.LastIndexByte(s, '@')
	if slash := strings.IndexAny(s, "/?#"); slash >= 0 && slash < at {
		at = strings.LastIndexByte(s[:slash], '@')
	}
	if at < 0 {
		return NotPlaceholder(secret) // the secret is the password alone
	}
	colon := strings.IndexByte(s[:at], ':')
	if colon < 0 || colon == at-1 {
		return false
	}
	return NotPlaceholder([]byte(s[colon+1 : at]))
}

// KeyValuePassword validates an ADO/ODBC or JDBC connection string: the value
// of its Password= or Pwd= field must be present and not a placeholder.
func KeyValuePassword(secret []byte) bool {
	lower := strings.ToLower(string(secret))
	for _, name := range []string{"password=", "pwd="} {
		i := strings.Index(lower, name)
		for i >= 0 {
			if i == 0 || strings.IndexByte(";?& \t", lower[i-1]) >= 0 {
				v := string(secret[i+len(name):])
				if j := strings.IndexAny(v, ";&"); j >= 0 {
					v = v[:j]
				}
				v = strings.Trim(strings.TrimSpace(v), `'"{}`)
				return NotPlaceholder([]byte(v))
			}
			next := strings.Index(lower[i+1:], name)
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	return false
}

// PrivateIPv4 validates a dotted IPv4 address in 10/8, 172.16/12 or
// 192.168/16, each octet a decimal number up to 255 without a leading zero.
func PrivateIPv4(secret []byte) bool {
	parts := strings.Split(string(secret), ".")
	if len(parts) != 4 {
		return false
	}
	var o [4]int
	for i, p := range parts {
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return false
		}
		o[i] = n
	}
	switch {
	case o[0] == 10:
		return true
	case o[0] == 172 && o[1] >= 16 && o[1] <= 31:
		return true
	case o[0] == 192 && o[1] == 168:
		return true
	}
	return false
}

// Base64Prefix returns a validator that accepts base64 (any alphabet) whose
// decoding starts with prefix.
func Base64Prefix(prefix string) func([]byte) bool {
	return func(b []byte) bool {
		// Decode a whole number of quanta so trailing garbage cannot hide the prefix.
		n := len(b) / 4 * 4
		dec, err := decodeBase64(b[:n])
		return err == nil && bytes.HasPrefix(dec, []byte(prefix))
	}
}
