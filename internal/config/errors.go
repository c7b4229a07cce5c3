package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Error is a bad setting, in one style whatever its source:
//
//	<where>: <key>: <problem> (e.g. <a good value>)
//
// where Where is the flag (--cache-ttl), the variable (JWTAUTHZ_CACHE_TTL)
// or the file and line (jwtauthz.yaml:5) the value came from. A flag or a
// variable names its key already, so the key is not repeated after it:
// `--cache-ttl: "5x" is not a duration (e.g. 5m)`, but
// `jwtauthz.yaml:5: cache_ttl: "5 minutes" is not a duration (e.g. 5m)`.
type Error struct {
	Where   string // the flag, variable or file:line; "" for a default
	Key     string // the YAML path: cache_ttl, providers[0].algorithms
	Err     error  // the problem
	Example string // a good value, or "" when the problem says what is allowed

	named     bool // Where is the flag or variable of Key itself
	inFile    bool // Where is a line of the file
	noExample bool // the problem says what to write; add no example
}

// Error formats e as the type's comment says.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where + ": ")
	}
	if e.Key != "" && !e.named {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	if e.Example != "" {
		b.WriteString(" (e.g. " + e.Example + ")")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// invalid is an Error about key, to be located; locate adds the example of
// key.
func invalid(key, format string, a ...any) *Error {
	return &Error{Key: key, Err: fmt.Errorf(format, a...)}
}

// invalidHint is invalid for a problem that says itself what is allowed:
// no example is added.
func invalidHint(key, format string, a ...any) *Error {
	return &Error{Key: key, Err: fmt.Errorf(format, a...), noExample: true}
}

// Locate returns err, an error of authz.New or Update with the
// configuration c built, with each of its errors about a key located as
// Validate's are: by the flag, variable or file line its value came from.
// ErrNoIssuer names the file, if one was read.
func (c *Config) Locate(err error) error {
	if errors.Is(err, ErrNoIssuer) && c.path != "" {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	return c.locate(err)
}

// locate gives each Error in err (errors.Join'd or alone) the place its
// value came from and its example, and turns an *authz.ConfigError into an
// Error about the key it names here. Other errors are returned as they are.
func (c *Config) locate(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, c.locate(e))
		}
		return errors.Join(errs...)
	}
	e, ok := err.(*Error)
	if ce, isAuthz := err.(*authz.ConfigError); isAuthz {
		// A provider's key here may be a setting (issuer, the Clerk
		// preset's), whose example is not what authz's problem needs.
		e, ok = &Error{Key: c.authzKey(ce.Key), Err: ce.Err, noExample: strings.HasPrefix(ce.Key, "providers[")}, true
	}
	if !ok {
		return err
	}
	if e.Where == "" {
		e.Where, e.named, e.inFile = c.where(e.Key)
	}
	if e.Example == "" && !e.noExample {
		e.Example = example(e.Key, e.inFile)
	}
	return e
}

// where names the source of key's value: the flag or variable that gave
// the setting key belongs to, else the line of the file that holds key or,
// for a key the file leaves out (providers[0].issuer), the nearest
// enclosing one; "" for a default.
func (c *Config) where(key string) (where string, named, inFile bool) {
	top := key
	if i := strings.IndexAny(key, ".["); i >= 0 {
		top = key[:i]
	}
	if w, ok := c.from[top]; ok {
		return w, key == top, false
	}
	for k := key; k != ""; k = parentKey(k) {
		if line, ok := c.lines[k]; ok {
			return c.path + ":" + strconv.Itoa(line), false, true
		}
	}
	return "", false, false
}

// parentKey is the key that holds key: rules[2] for rules[2].match, rules
// for rules[2], "" for a top-level key.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		return key[:strings.LastIndexByte(key, '[')]
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

var providerIndex = regexp.MustCompile(`^providers\[(\d+)\]`)

// authzKey is the key here of authz's key: authz counts providers in the
// order AllProviders lists them, the one of --issuer first and the Clerk
// preset's last.
func (c *Config) authzKey(key string) string {
	m := providerIndex.FindStringSubmatch(key)
	if m == nil {
		return key // rules[i] are the file's
	}
	i, _ := strconv.Atoi(m[1])
	rest := key[len(m[0]):]
	if c.Issuer != "" {
		if i == 0 {
			return "issuer" + rest
		}
		i--
	}
	if i < len(c.Providers) {
		return fmt.Sprintf("providers[%d]%s", i, rest)
	}
	for _, k := range []string{"clerk_publishable_key", "clerk_domain"} {
		if _, ok := c.from[k]; ok {
			return k + rest
		}
		if _, ok := c.lines[k]; ok {
			return k + rest
		}
	}
	return "clerk_secret_key" + rest
}

var index = regexp.MustCompile(`\[\d+\]`)

// examples are the good values of the file's keys that are not settings
// (a setting's example is in settings), by key with [] for each index.
var examples = map[string]string{
	"providers[].name":               "auth0",
	"providers[].jwks_file":          "/etc/jwtauthz/jwks.json",
	"providers[].jwks_headers":       "{x-api-key: …}",
	"providers[].token_sources":      `[{header: authorization, prefix: "Bearer "}, {cookie: __session}]`,
	"providers[].token_sources[]":    `{header: authorization, prefix: "Bearer "}`,
	"providers[].claim_headers":      "{x-auth-email: email}",
	"providers[].payload_header":     "x-auth-payload",
	"providers[].forward_token":      "false",
	"providers[].authorized_parties": "[https://app.example.com]",
	"providers[].metadata_claims":    "[org, tier]",
	"providers[].metadata_claims[]":  "o.id",
	"providers[].metadata":           "false",
	"providers[].tenants":            `[11111111-2222-3333-4444-555555555555], or "*"`,
	"providers[].required_typ":       "at+jwt",
	"providers[].max_lifetime":       "24h",
	"providers[].subjects":           `{exact: [alice], prefix: [user_], regex: "svc-[a-z]+"}`,
	"providers[].subjects.regex":     "user_[0-9]+",
	"rules[].match.path":             "/healthz",
	"rules[].match.path_prefix":      "/api/",
	"rules[].match.path_regex":       "/api/v[0-9]+/.*",
	"rules[].match.hosts[]":          "api.example.com, or *.example.com",
	"rules[].match.methods":          "[GET, HEAD]",
	"rules[].require.scopes":         "[read:orders]",
	"rules[].require.claims":         "{org_role: admin}",
}

// example is a good value for key, as the source it came from writes it:
// RS256,ES256 after a flag or variable, [RS256, ES256] in the file.
func example(key string, inFile bool) string {
	k := index.ReplaceAllString(key, "[]")
	if eg, ok := examples[k]; ok {
		return eg
	}
	k = strings.TrimPrefix(k, "providers[].") // issuer, jwks_url, audiences, algorithms
	for _, s := range settings {
		if s.key() == k {
			if inFile && s.reset != nil {
				return "[" + strings.ReplaceAll(s.eg, ",", ", ") + "]"
			}
			return s.eg
		}
	}
	return ""
}
