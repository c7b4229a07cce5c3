package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// KeySource is where a provider's verification keys come from. jwks.Source
// implements it; the consumer owns the interface.
type KeySource interface {
	// Key returns the current key with kid and the alg its JWK names (empty
	// if none), without blocking.
	Key(kid string) (key crypto.PublicKey, alg string, ok bool)
	// Ready reports whether any key set has been loaded.
	Ready() bool
	// Refresh asks for a fetch because a token names an unknown kid, waits
	// at most until ctx ends, and reports whether a fetch succeeded. It may
	// say no at once (cooldown).
	Refresh(ctx context.Context) bool
	// EachKey calls yield with every current key, with or without kid, and
	// the alg its JWK names (empty if none), all from one snapshot, until
	// yield returns false: the keys a token without kid may be checked
	// against (MaxKeylessTries).
	EachKey(yield func(key crypto.PublicKey, alg string) bool)
	// HasKey reports whether key is in the current set, under any kid or
	// none, without blocking or allocating.
	HasKey(key crypto.PublicKey) bool
}

// DefaultAlgorithms are the asymmetric algorithms accepted by default. HMAC
// and "none" are never accepted.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Identity headers set on every allow with a token.
const (
	HeaderSubject = "x-auth-subject"
	HeaderIssuer  = "x-auth-issuer"
)

// ProviderConfig describes one trusted issuer.
type ProviderConfig struct {
	Name       string
	Issuer     string   // the expected iss, compared exactly
	Audiences  []string // any of them must be in aud; empty: aud not checked
	Algorithms []string // empty: DefaultAlgorithms
	Keys       KeySource
	// TokenSources are tried in order; empty: BearerSource.
	TokenSources []TokenSource
	// ClaimHeaders maps an upstream header to the claim it carries.
	ClaimHeaders map[string]string
	// PayloadHeader, if set, carries the base64url JSON payload upstream.
	PayloadHeader string
	// MetadataClaims are the claims (names or dotted paths) that an allow
	// tells the proxy as metadata besides sub, iss and provider
	// (Decision.Metadata).
	MetadataClaims []string
	// NoMetadata: the checks of this provider's tokens tell the proxy no
	// metadata, allows and denials alike.
	NoMetadata bool
	// DropToken removes the token (header, cookie or query parameter) from
	// the upstream request.
	DropToken bool
	// AuthorizedParties, if set, are the accepted values of azp when a token
	// has one (Clerk).
	AuthorizedParties []string
	// AnyIssuer accepts whatever iss a token signed by Keys names, and
	// passes it upstream. Only for key sets that belong to one issuer alone
	// (Clerk's Backend API JWKS, reached with the instance's secret key):
	// with a shared key set it would accept tokens of other issuers. At
	// most one provider may set it; Issuer is then left empty.
	AnyIssuer bool
	// Tenants makes Issuer a template of a multi-tenant IdP, TenantPlaceholder
	// standing for one whole path segment
	// (https://login.microsoftonline.com/{tenantid}/v2.0): a token whose iss
	// is the template with a listed tenant belongs to this provider, and its
	// tid claim must be that tenant (else invalid_claims). AnyTenant ("*")
	// alone accepts every tenant: with a key set the IdP shares between
	// tenants (Entra ID's common keys), anyone who creates a tenant can then
	// mint tokens that pass, so the audiences and rules must pin what is
	// accepted. Tenants without a template, or a template without Tenants,
	// is an error.
	Tenants []string
	// RequiredTyp, if set, is the JWS header typ every token must have (at+jwt
	// for RFC 9068 access tokens), compared without case and with or without
	// "application/"; else the denial is wrong_typ. Empty: typ not checked.
	RequiredTyp string
	// MaxLifetime, if positive, bounds exp - iat (exp - now, beyond the clock
	// skew, when iat is absent); else the denial is lifetime_too_long, as
	// Envoy jwt_authn's max_lifetime. 0: not checked; negative: an error.
	MaxLifetime time.Duration
	// Subjects, if not empty, are the accepted sub values; else the denial
	// is wrong_subject.
	Subjects SubjectMatch

	// Introspector, if set, makes this an introspection provider (RFC
	// 7662): the tokens it decides are the opaque ones (not a JWT) of the
	// routes that allow it, and the JWTs no JWT provider has by iss if
	// IntrospectJWTs is set. It takes no Keys, AnyIssuer or Algorithms;
	// Issuer, if set, is what a response's iss must be (if empty, the
	// response must name one). See opaque.go.
	Introspector Introspector
	// IntrospectJWTs lets the Introspector decide JWTs too: those whose iss
	// no JWT provider has. Without it only opaque tokens are introspected.
	IntrospectJWTs bool
	// IntrospectionCacheTTL is the longest an active response without exp
	// is cached (never beyond Config.CacheTTL); 0: such a response is used
	// for its check only.
	IntrospectionCacheTTL time.Duration
}

type claimHeader struct{ header, claim string }

// provider is a ProviderConfig made ready for checks: one strict parser,
// built once.
type provider struct {
	cfg          ProviderConfig
	name         string
	keys         KeySource
	validator    *jwt.Validator               // exp (required), nbf, iat, iss, aud, with the skew
	methods      map[string]jwt.SigningMethod // the allowed algorithms
	skew         time.Duration
	wait         time.Duration // Config.NetworkWait: the longest a check waits for a refresh
	tracer       Tracer        // Config.Tracer; nil: none
	algs         []string
	sources      []TokenSource
	claimHeaders []claimHeader
	headers      []string // every header this provider sets on an allow
	// checks are the optional token checks (typ, lifetime, subjects,
	// tenant); nil: none.
	checks *tokenChecks
	// keepsIss: the grants keep the token's iss (AnyIssuer, a template), and
	// hold only while the policy routes that iss here.
	keepsIss bool
	// meta is the provider's prepared metadata; nil: NoMetadata.
	meta *providerMetadata

	// used numbers the keys that verified tokens, each as the kid and the
	// key it named then, so that a grant keeps two bytes, not a string and
	// a key. Only keys of the key set get here, so it stays small; it is
	// never shrunk, and past maxKids a grant keeps its own. A kid whose key
	// the IdP replaced gets a new number.
	kidMu  sync.Mutex
	kidNum map[string]uint16 // a kid's latest number
	used   atomic.Pointer[[]usedKey]
	// keylessNums numbers the keys that verified tokens without kid: several
	// keys share the empty kid, and each keeps its number.
	keylessNums []uint16
}

// usedKey is a key that verified tokens, and its kid.
type usedKey struct {
	kid string
	key crypto.PublicKey
}

const maxKids = 1 << 16

// keyIndex returns the number of kid with key, and false if the table is
// full.
func (p *provider) keyIndex(kid string, key crypto.PublicKey) (uint16, bool) {
	p.kidMu.Lock()
	defer p.kidMu.Unlock()
	var used []usedKey
	if cur := p.used.Load(); cur != nil {
		used = *cur
	}
	if i, ok := p.kidNum[kid]; ok && sameKey(used[i].key, key) {
		return i, true
	}
	if kid == "" {
		for _, i := range p.keylessNums {
			if sameKey(used[i].key, key) {
				return i, true
			}
		}
	}
	if len(used) >= maxKids {
		return 0, false
	}
	if p.kidNum == nil {
		p.kidNum = map[string]uint16{}
	}
	i := uint16(len(used))
	p.kidNum[kid] = i
	if kid == "" {
		p.keylessNums = append(p.keylessNums, i)
	}
	next := append(used[:len(used):len(used)], usedKey{kid, key}) // readers keep the old slice
	p.used.Store(&next)
	return i, true
}

// usedKey returns the key with number i, without a lock.
func (p *provider) usedKey(i uint16) *usedKey { return &(*p.used.Load())[i] }

// sameKey reports whether a and b are one public key: the same object (a
// key source such as jwks.Source keeps a key's object while its material
// stays the same, so this is the usual answer and costs a comparison), or
// equal material. The key source's own comparison is not imported: authz
// depends on no key source, only on KeySource.
func sameKey(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		if b, ok := b.(*ecdsa.PublicKey); ok && a == b {
			return true
		}
	case *rsa.PublicKey:
		if b, ok := b.(*rsa.PublicKey); ok && a == b {
			return true
		}
	}
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func newProvider(cfg ProviderConfig, skew, wait time.Duration, now func() time.Time) (*provider, error) {
	if err := checkIntrospection(cfg); err != nil {
		return nil, err
	}
	if cfg.Introspector == nil && (cfg.Name == "" || (cfg.Issuer == "") != cfg.AnyIssuer || cfg.Keys == nil) {
		return nil, fmt.Errorf("provider %q: name, keys and an issuer (or AnyIssuer) are required", cfg.Name)
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	for _, a := range algs {
		if !slices.Contains(DefaultAlgorithms, a) {
			return nil, fmt.Errorf("provider %q: algorithm %q is not allowed (allowed: %s)", cfg.Name, a, strings.Join(DefaultAlgorithms, ","))
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(skew),
		jwt.WithTimeFunc(now),
	}
	checks, err := newTokenChecks(cfg, skew, now)
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", cfg.Name, err)
	}
	if !cfg.AnyIssuer && (checks == nil || checks.tenants == nil) { // a template's tenants are the provider's issuers (addIssuers)
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...))
	}
	p := &provider{cfg: cfg, name: cfg.Name, keys: cfg.Keys, validator: jwt.NewValidator(opts...), skew: skew, wait: wait,
		algs: algs, methods: map[string]jwt.SigningMethod{}, sources: cfg.TokenSources, checks: checks,
		keepsIss: cfg.AnyIssuer || checks != nil && checks.tenants != nil}
	for _, a := range algs {
		p.methods[a] = jwt.GetSigningMethod(a)
	}
	if len(p.sources) == 0 {
		p.sources = []TokenSource{BearerSource}
	}
	p.sources = slices.Clone(p.sources)
	for i := range p.sources {
		p.sources[i].Header = strings.ToLower(p.sources[i].Header) // Envoy sends names in lower case
	}
	p.headers = []string{HeaderSubject, HeaderIssuer}
	for h, c := range cfg.ClaimHeaders {
		p.claimHeaders = append(p.claimHeaders, claimHeader{strings.ToLower(h), c})
	}
	slices.SortFunc(p.claimHeaders, func(a, b claimHeader) int { return strings.Compare(a.header, b.header) })
	for _, ch := range p.claimHeaders {
		p.headers = append(p.headers, ch.header)
	}
	if cfg.PayloadHeader != "" {
		p.headers = append(p.headers, strings.ToLower(cfg.PayloadHeader))
	}
	for i, h := range p.headers {
		switch {
		case slices.Contains(p.headers[:i], h):
			return nil, fmt.Errorf("provider %q: header %q would be set twice (names are compared in lower case, and %s and %s are the identity headers)", cfg.Name, h, HeaderSubject, HeaderIssuer)
		case slices.Contains(reservedHeaders, h):
			return nil, fmt.Errorf("provider %q: header %q is the request's own: a claim must not set it", cfg.Name, h)
		}
	}
	meta, err := newProviderMetadata(&cfg)
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", cfg.Name, err)
	}
	p.meta = meta
	return p, nil
}

// reservedHeaders may not be claim or payload headers: an upstream reads
// them as the request's own.
var reservedHeaders = []string{"authorization", "cookie", "host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade", "x-forwarded-for", "x-request-id"}

// hasSource reports whether this provider reads tokens from s.
func (p *provider) hasSource(s *TokenSource) bool {
	for i := range p.sources {
		if p.sources[i] == *s {
			return true
		}
	}
	return false
}
