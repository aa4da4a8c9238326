package rules

// family is one provider's rule set; each lives in its own file.
type family struct {
	name  string
	rules func() []Rule
}

// families lists the rule sets in the order the engine prefers them when
// two specific rules report the same span.
var families = []family{
	{"aws", aws}, {"gcp", gcp}, {"azure", azure}, {"github", github}, {"gitlab", gitlab},
	{"stripe", stripe}, {"slack", slack}, {"discord", discord}, {"twilio", twilio},
	{"sendgrid", sendgrid}, {"mailgun", mailgun}, {"mailchimp", mailchimp}, {"npm", npm},
	{"pypi", pypi}, {"docker", docker}, {"hashicorp", hashicorp}, {"digitalocean", digitalocean},
	{"shopify", shopify}, {"huggingface", huggingface}, {"openai", openai}, {"anthropic", anthropic},
	{"databricks", databricks}, {"doppler", doppler}, {"linear", linear}, {"postman", postman},
	{"newrelic", newrelic}, {"grafana", grafana}, {"sentry", sentry}, {"datadog", datadog},
	{"telegram", telegram}, {"jwt", jwt}, {"privatekey", privateKeys}, {"age", age},
	{"connstring", connStrings}, {"urlauth", urlAuth}, {"authheader", authHeaders},
	{"netrc", netrc}, {"k8s", k8s}, {"takumo", takumo}, {"infra", infra}, {"generic", generic},
}

// Builtin returns a fresh copy of the built-in catalog.
func Builtin() []Rule {
	var out []Rule
	for _, f := range families {
		out = append(out, f.rules()...)
	}
	return out
}

// Family is a named provider rule set of the built-in catalog.
type Family struct {
	Name  string
	Rules []Rule
}

// Families returns a fresh copy of the built-in catalog grouped by provider
// family, in catalog order; tests and documentation use it.
func Families() []Family {
	out := make([]Family, 0, len(families))
	for _, f := range families {
		out = append(out, Family{Name: f.name, Rules: f.rules()})
	}
	return out
}
