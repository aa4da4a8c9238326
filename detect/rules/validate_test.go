package rules

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestGitHubChecksum(t *testing.T) {
	body := "Zx8Qm2Lp4Rt6Vw1Yb3Nc5Hd7Jf9Kg0"
	sum := base62CRC32([]byte(body))
	good := "ghp_" + body + string(sum[:])
	bad := []byte(good)
	bad[len(bad)-1] ^= 1 // flip a bit of the last checksum character
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"valid ghp", good, true},
		{"valid npm", "npm_" + body + string(sum[:]), true},
		{"wrong checksum", string(bad), false},
		{"changed body", "ghp_" + "A" + body[1:] + string(sum[:]), false},
		{"too short", "ghp_" + body, false},
		{"no underscore", "ghp" + body + string(sum[:]), false},
		{"non-base62 character", "ghp_" + body[:29] + "-" + string(sum[:]), false},
		{"placeholder", "ghp_" + strings.Repeat("x", 36), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := GitHubChecksum([]byte(tc.in)); got != tc.want {
				t.Errorf("GitHubChecksum(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestBase62CRC32(t *testing.T) {
	// CRC32("") = 0 encodes as six zeros; CRC32("a") = 0xe8b7be43 =
	// 3904355907 = base62 "4GEHKN".
	tests := []struct{ in, want string }{
		{"", "000000"},
		{"a", "4GEHKN"},
	}
	for _, tc := range tests {
		if got := base62CRC32([]byte(tc.in)); string(got[:]) != tc.want {
			t.Errorf("base62CRC32(%q) = %s, want %s", tc.in, got[:], tc.want)
		}
	}
}

func TestAWSKeyID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		// "AKIAQYLPMN5HHHFPZAM2" encodes account 052310077262.
		{"small account id", "AKIAQYLPMN5HHHFPZAM2", true},
		{"all A decodes to account 0", "AKIAAAAAAAAAAAAAAAAA", true},
		{"account id above 999999999999", "AKIA7777777777777777", false},
		{"docs example", "AKIAIOSFODNN7EXAMPLE", false},
		{"not base32", "AKIA1234567890ABCDEF", false},
		{"too short", "AKIAQYLPMN5HHHFPZAM", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AWSKeyID([]byte(tc.in)); got != tc.want {
				t.Errorf("AWSKeyID(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestAzureStorageKey(t *testing.T) {
	key64 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k3y!", 16)))
	key48 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k3y!", 12)))
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"64 bytes", key64, true},
		{"48 bytes", key48, false},
		{"88 chars not base64", strings.Repeat("*", 88), false},
		{"88 chars without padding", key64[:86] + "AA", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AzureStorageKey([]byte(tc.in)); got != tc.want {
				t.Errorf("AzureStorageKey(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestJWTHeader(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := enc(`{"sub":"u1","iat":1767225600}`)
	sig := enc("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"HS256", enc(`{"alg":"HS256","typ":"JWT"}`) + "." + payload + "." + sig, true},
		{"RS256 padded", enc(`{"alg":"RS256"}`) + "==." + payload + "." + sig, true},
		{"alg none", enc(`{"alg":"none"}`) + "." + payload + "." + sig, false},
		{"alg NONE", enc(`{"alg":"NONE"}`) + "." + payload + "." + sig, false},
		{"no alg", enc(`{"typ":"JWT"}`) + "." + payload + "." + sig, false},
		{"alg not a string", enc(`{"alg":1}`) + "." + payload + "." + sig, false},
		{"payload not JSON", enc(`{"alg":"HS256"}`) + "." + enc("hello") + "." + sig, false},
		{"two segments", enc(`{"alg":"HS256"}`) + "." + payload, false},
		{"empty signature", enc(`{"alg":"HS256"}`) + "." + payload + ".", false},
		{"header not base64", "eyJ!!!." + payload + "." + sig, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := JWTHeader([]byte(tc.in)); got != tc.want {
				t.Errorf("JWTHeader(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestBase64Decodes(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"aGVsbG8=", true},
		{"aGVsbG8", true},
		{"-_-_", true},
		{"a", false},
		{"a!bc", false},
	}
	for _, tc := range tests {
		if got := Base64Decodes([]byte(tc.in)); got != tc.want {
			t.Errorf("Base64Decodes(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"user and password", enc("deploy:Xq7!pL2m"), true},
		{"empty user", enc(":Xq7!pL2m9"), true},
		{"no colon", enc("justatoken"), false},
		{"empty password", enc("deploy:"), false},
		{"placeholder password", enc("admin:changeme"), false},
		{"binary", enc("\x00\x01:\x02\x03"), false},
		{"not base64", "not base64!", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BasicAuth([]byte(tc.in)); got != tc.want {
				t.Errorf("BasicAuth(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDiscordToken(t *testing.T) {
	id := base64.RawStdEncoding.EncodeToString([]byte("1234567890123456789"))
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"numeric id", id + ".GhJk12.abcdefghijklmnopqrstuvwxyz0123456789", true},
		{"id not numeric", base64.RawStdEncoding.EncodeToString([]byte("12345678901234567x9")) + ".GhJk12.abc", false},
		{"id too short", base64.RawStdEncoding.EncodeToString([]byte("1234567890")) + ".GhJk12.abc", false},
		{"leading zero", base64.RawStdEncoding.EncodeToString([]byte("0234567890123456789")) + ".GhJk12.abc", false},
		{"no dot", id, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DiscordToken([]byte(tc.in)); got != tc.want {
				t.Errorf("DiscordToken(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestSnowflake(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"1234567890123456789", true},
		{"80351110224678912", true},
		{"1234", false},
		{"18446744073709551615", false}, // timestamp far past 2100
		{"12345678901234567a", false},
	}
	for _, tc := range tests {
		if got := Snowflake([]byte(tc.in)); got != tc.want {
			t.Errorf("Snowflake(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBech32(t *testing.T) {
	// Test vectors from BIP 173.
	tests := []struct {
		in   string
		want bool
	}{
		{"A12UEL5L", true},
		{"a12uel5l", true},
		{"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", true},
		{"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", true},
		{"A12UEL5l", false}, // mixed case
		{"a12uel5m", false}, // checksum
		{"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", false},
		{"pzry9x0s0muk", false}, // no separator
		{"1pzry9x0s0muk", false},
		{"x1b4n0q5v", false}, // invalid data character b
	}
	for _, tc := range tests {
		if got := Bech32([]byte(tc.in)); got != tc.want {
			t.Errorf("Bech32(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestNotPlaceholder(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"Zx8Qm2Lp4Rt6Vw1Y", true},
		{"${DB_PASSWORD}", false},
		{"{{ .Values.db.password }}", false},
		{"<your-token>", false},
		{"%s", false},
		{"changeme", false},
		{"your-api-key-here", false},
		{"xxxxxxxxxxxx", false},
		{"************", false},
		{"aaaaaaaa", false},
		{"password", false},
		{"__TAKUMO_v1_KEY_8f3a2b1c__", false},
		{"process.env.API_KEY", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := NotPlaceholder([]byte(tc.in)); got != tc.want {
			t.Errorf("NotPlaceholder(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestURLPassword(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"postgres://app:Zx8Qm2Lp@db/app", true},
		{"redis://:Zx8Qm2Lp4R@cache:6379", true},
		{"postgres://app:${PW}@db/app", false},
		{"postgres://app:password@db/app", false},
		{"postgres://app@db/app", false},
		{"postgres://app:@db/app", false},
		{"mongodb://u:Zx8Qm2Lp@h1,h2/db?x=a@b", true},
		{"Zx8Qm2Lp4R", true}, // the password alone
	}
	for _, tc := range tests {
		if got := URLPassword([]byte(tc.in)); got != tc.want {
			t.Errorf("URLPassword(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestKeyValuePassword(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"Server=sql01;User Id=sa;Password=Zx8Qm2Lp;", true},
		{"Data Source=x;Pwd=Zx8Qm2Lp", true},
		{"jdbc:mysql://db/app?user=app&password=Zx8Qm2Lp&ssl=true", true},
		{"Server=sql01;Password=${SA_PASSWORD};", false},
		{"Server=sql01;Password=<YourStrong@Passw0rd>;", false},
		{"Server=sql01;OldPassword=Zx8Qm2Lp;", false},
		{"Server=sql01;Trusted_Connection=True;", false},
	}
	for _, tc := range tests {
		if got := KeyValuePassword([]byte(tc.in)); got != tc.want {
			t.Errorf("KeyValuePassword(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPrivateIPv4(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"10.0.0.1", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"172.15.0.1", false},
		{"172.32.0.1", false},
		{"192.169.0.1", false},
		{"8.8.8.8", false},
		{"10.256.0.1", false},
		{"10.01.0.1", false},
		{"10.0.0", false},
	}
	for _, tc := range tests {
		if got := PrivateIPv4([]byte(tc.in)); got != tc.want {
			t.Errorf("PrivateIPv4(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBase64Prefix(t *testing.T) {
	v := Base64Prefix("BedrockAPIKey-")
	good := base64.StdEncoding.EncodeToString([]byte("BedrockAPIKey-ab12-at-123456789012:secret"))
	if !v([]byte(good)) {
		t.Errorf("Base64Prefix rejected %q", good)
	}
	if v([]byte(base64.StdEncoding.EncodeToString([]byte("SomethingElse-ab12")))) {
		t.Error("Base64Prefix accepted another prefix")
	}
	if v([]byte("!!!!")) {
		t.Error("Base64Prefix accepted non-base64")
	}
}

func TestAllAndMinEntropy(t *testing.T) {
	v := All(MinEntropy(3), NotPlaceholder)
	if !v([]byte("Zx8Qm2Lp4Rt6Vw1Y")) {
		t.Error("rejected a random value")
	}
	if v([]byte("abababababababab")) {
		t.Error("accepted a low-entropy value")
	}
	if v([]byte("your_key_1234567890")) {
		t.Error("accepted a placeholder")
	}
}

func TestPEMBody(t *testing.T) {
	body := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", 2)
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"newlines", "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----", true},
		{"json escapes", `-----BEGIN PRIVATE KEY-----\n` + body + `\n-----END PRIVATE KEY-----`, true},
		{"headers", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\n" + body + "\n-----END RSA PRIVATE KEY-----", true},
		{"placeholder", "-----BEGIN PRIVATE KEY-----\n<your key here, including the lines>\n-----END PRIVATE KEY-----", false},
		{"too short", "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pemBody([]byte(tc.in)); got != tc.want {
				t.Errorf("pemBody = %v, want %v", got, tc.want)
			}
		})
	}
}
