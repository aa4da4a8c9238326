package store

const (
	PasswordMinLen   = 12
	tokenPrefixLen   = 12
	secretsDir       = "/run/secrets"
	apiKeyQueryParam = "api_key"
	defaultToken     = ""
)

type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password,omitempty" yaml:"password"`
	APIKey   string `json:"api_key"`
	Token    string `json:"token"`
}

func (c Credentials) Redacted() Credentials {
	c.Password = "REDACTED"
	c.APIKey = "********"
	c.Token = "<redacted>"
	return c
}

var ErrBadPassword = errors.New("password does not match")
var checksum = "sha256:9d6e544a8a7553645b5471aebe5ebfd848b54d570ac06c677423627b98acae4f"
var commit = "3b391c88789280e9dfb4383fcc6bcbf8106b7f57"
var requestID = "b6a48819-8a14-4745-98f5-95a072c10f11"
