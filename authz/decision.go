package authz

import "net/http"

// Reason is why a check was decided the way it was. The set is small and
// fixed, so it can label metrics.
type Reason uint8

// Reasons. The comment is the label value (Reason.String).
const (
	ReasonOK                  Reason = iota // ok: a valid token
	ReasonPublic                            // public: a rule allows the route without a token
	ReasonAnonymous                         // anonymous: an optional route, no token sent
	ReasonNoToken                           // no_token
	ReasonTooLarge                          // token_too_large
	ReasonMalformed                         // malformed
	ReasonAlgNotAllowed                     // alg_not_allowed
	ReasonBadSignature                      // bad_signature
	ReasonUnknownKID                        // unknown_kid
	ReasonKeyMismatch                       // key_mismatch: the JWK's alg disagrees with the token
	ReasonExpired                           // expired
	ReasonNotYetValid                       // not_yet_valid: nbf or iat in the future
	ReasonMissingClaim                      // missing_claim: exp (or iss) absent
	ReasonWrongIssuer                       // wrong_issuer: no provider has this iss, or the rule does not allow it
	ReasonWrongAudience                     // wrong_audience
	ReasonWrongParty                        // wrong_azp
	ReasonInvalidClaims                     // invalid_claims: other claim checks
	ReasonInsufficientScope                 // insufficient_scope: valid, but the rule requires more
	ReasonUnavailable                       // unavailable: the provider has no keys yet
	ReasonRequestTooLarge                   // request_too_large: more headers than the adapter reads
	ReasonBadRequest                        // bad_request: an ambiguous original request or path
	ReasonSpoofedHeader                     // spoofed_header: forward-auth, the client sent a header jwtauthz sets
	ReasonConditionFailed                   // condition_failed: valid, but the rule's CEL condition (require.when) is false or failed
	ReasonWrongTyp                          // wrong_typ: the token's typ header is not the provider's required_typ
	ReasonLifetimeTooLong                   // lifetime_too_long: exp - iat (or exp - now) beyond the provider's max_lifetime
	ReasonWrongSubject                      // wrong_subject: sub matches none of the provider's subjects
	ReasonInactive                          // inactive: the introspection endpoint says the token is not active
	ReasonIntrospectionFailed               // introspection_failed: the introspection endpoint's answer could not be used
	numReasons
)

// NumReasons is the number of reasons: every Reason is below it, so that an
// adapter can keep what it prepares per reason in an array.
const NumReasons = numReasons

type reasonInfo struct {
	label  string
	status int
	desc   string // error_description: fixed text, safe inside quotes
}

var reasons = [numReasons]reasonInfo{
	ReasonOK:                  {"ok", http.StatusOK, ""},
	ReasonPublic:              {"public", http.StatusOK, ""},
	ReasonAnonymous:           {"anonymous", http.StatusOK, ""},
	ReasonNoToken:             {"no_token", http.StatusUnauthorized, "a bearer token is required"},
	ReasonTooLarge:            {"token_too_large", http.StatusUnauthorized, "token too large"},
	ReasonMalformed:           {"malformed", http.StatusUnauthorized, "token malformed"},
	ReasonAlgNotAllowed:       {"alg_not_allowed", http.StatusUnauthorized, "signing algorithm not allowed"},
	ReasonBadSignature:        {"bad_signature", http.StatusUnauthorized, "signature invalid"},
	ReasonUnknownKID:          {"unknown_kid", http.StatusUnauthorized, "signing key unknown"},
	ReasonKeyMismatch:         {"key_mismatch", http.StatusUnauthorized, "signing key does not match the algorithm"},
	ReasonExpired:             {"expired", http.StatusUnauthorized, "token expired"},
	ReasonNotYetValid:         {"not_yet_valid", http.StatusUnauthorized, "token not yet valid"},
	ReasonMissingClaim:        {"missing_claim", http.StatusUnauthorized, "required claim missing"},
	ReasonWrongIssuer:         {"wrong_issuer", http.StatusUnauthorized, "issuer not accepted"},
	ReasonWrongAudience:       {"wrong_audience", http.StatusUnauthorized, "audience not accepted"},
	ReasonWrongParty:          {"wrong_azp", http.StatusUnauthorized, "authorized party not accepted"},
	ReasonInvalidClaims:       {"invalid_claims", http.StatusUnauthorized, "claims invalid"},
	ReasonInsufficientScope:   {"insufficient_scope", http.StatusForbidden, "insufficient scope"},
	ReasonUnavailable:         {"unavailable", http.StatusServiceUnavailable, "signing keys not available yet"},
	ReasonRequestTooLarge:     {"request_too_large", http.StatusRequestHeaderFieldsTooLarge, "too many request headers"},
	ReasonBadRequest:          {"bad_request", http.StatusBadRequest, "request path or forwarded headers ambiguous"},
	ReasonSpoofedHeader:       {"spoofed_header", http.StatusBadRequest, "the request carries a header jwtauthz sets"},
	ReasonConditionFailed:     {"condition_failed", http.StatusForbidden, "the rule's condition does not hold"},
	ReasonWrongTyp:            {"wrong_typ", http.StatusUnauthorized, "token type not accepted"},
	ReasonLifetimeTooLong:     {"lifetime_too_long", http.StatusUnauthorized, "token lifetime too long"},
	ReasonWrongSubject:        {"wrong_subject", http.StatusUnauthorized, "subject not accepted"},
	ReasonInactive:            {"inactive", http.StatusUnauthorized, "token inactive"},
	ReasonIntrospectionFailed: {"introspection_failed", http.StatusServiceUnavailable, "token introspection failed"},
}

// String returns the reason's label, e.g. "bad_signature".
func (r Reason) String() string {
	if r < numReasons {
		return reasons[r].label
	}
	return "unknown"
}

// Status returns the HTTP status a check with this reason answers.
func (r Reason) Status() int {
	if r < numReasons {
		return reasons[r].status
	}
	return http.StatusUnauthorized
}

// Description returns the short, fixed error_description of a denial.
func (r Reason) Description() string {
	if r < numReasons {
		return reasons[r].desc
	}
	return "denied"
}

// Reasons returns every reason, for pre-registering metric labels.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Realm is the realm of every WWW-Authenticate challenge.
const Realm = "jwtauthz"

// challenge and body are prepared once per reason: a denial builds no strings.
var (
	challenges [numReasons]string
	bodies     [numReasons]string
)

// Challenge returns the WWW-Authenticate value of the reason's denial, as
// Decision.Challenge holds it unless the denial has one of its own (a rule's
// scopes); "" for a reason that allows. It is made once: no string is built.
func (r Reason) Challenge() string {
	if r < numReasons {
		return challenges[r]
	}
	return ""
}

// Body returns the JSON body of the reason's denial, as Decision.Body holds
// it unless the denial has one of its own (spoofed_header names the
// header). It is made once: no string is built.
func (r Reason) Body() string {
	if r < numReasons {
		return bodies[r]
	}
	return ""
}

func init() {
	for r := range numReasons {
		info := reasons[r]
		switch {
		case info.status == http.StatusOK:
		case r == ReasonNoToken, r == ReasonUnavailable, r == ReasonIntrospectionFailed, r == ReasonRequestTooLarge, r == ReasonBadRequest, r == ReasonSpoofedHeader:
			challenges[r] = `Bearer realm="` + Realm + `"`
		case r == ReasonInsufficientScope, r == ReasonConditionFailed:
			challenges[r] = `Bearer realm="` + Realm + `", error="insufficient_scope", error_description="` + info.desc + `"`
		default:
			challenges[r] = `Bearer realm="` + Realm + `", error="invalid_token", error_description="` + info.desc + `"`
		}
		code := "invalid_token"
		switch r {
		case ReasonNoToken:
			code = "missing_token"
		case ReasonUnavailable, ReasonIntrospectionFailed:
			code = "temporarily_unavailable"
		case ReasonInsufficientScope, ReasonConditionFailed:
			code = "insufficient_scope"
		case ReasonRequestTooLarge, ReasonBadRequest, ReasonSpoofedHeader:
			code = "invalid_request"
		}
		bodies[r] = `{"error":"` + code + `","error_description":"` + info.desc + `"}`
	}
}

// Header is one header jwtauthz sets on the request to the upstream.
type Header struct {
	Name  string // lower-case
	Value string
}

// Decision is the outcome of one check. A denial is a Decision, not an error.
type Decision struct {
	Allow  bool
	Reason Reason
	// Challenge is the WWW-Authenticate value of a denial.
	Challenge string
	// Body is the JSON body of a denial.
	Body string
	// Provider names the provider whose token decided, if any.
	Provider string
	// Subject is the token's sub, if a token was verified. On an allow it
	// goes upstream as x-auth-subject (when not empty).
	Subject string
	// Issuer is the verified token's iss; on an allow it goes upstream as
	// x-auth-issuer.
	Issuer string

	// Set are the further headers to set (overwrite) on the upstream
	// request: claim and payload headers.
	Set []Header
	// Remove are the headers to remove from the upstream request: every
	// header jwtauthz may set but did not, and a token not to be forwarded.
	Remove []string
	// Cookie, if CookieSet, replaces the cookie header (a token cookie that
	// is not to be forwarded taken out).
	Cookie    string
	CookieSet bool
	// RemoveQuery names query parameters to remove (a query token that is
	// not to be forwarded).
	RemoveQuery []string

	// Cached reports that the token cache or the request dedup answered.
	Cached bool
	// Layer is what answered the check: a cache, or a verification.
	Layer Layer

	// Metadata is what the check tells the proxy for the filters after it
	// and its access log (Envoy's dynamic metadata), made once and shared:
	// never change it. nil: nothing, as for a provider with NoMetadata.
	// Check sets it; CheckForwarded leaves it nil (forward-auth cannot
	// carry it).
	Metadata *Metadata

	rule int32 // the deciding rule's index plus one; 0: none (Rule)

	grant *Grant
	until int64 // how long the request dedup may reuse it, Unix nanoseconds
}

// Rule returns the index, in the configuration's rules, of the rule that
// decided; -1 if none did (a request refused before its route was known,
// or a route no rule matches).
func (d *Decision) Rule() int { return int(d.rule) - 1 }

// Layer is what answered a check, for the audit log.
type Layer uint8

// Layers. The comment is the label (Layer.String).
const (
	LayerNone          Layer = iota // none: no token was looked at (a public route, no token, a refused request)
	LayerTokenCache                 // token_cache: the token cache held the token's grant
	LayerNegativeCache              // negative_cache: the negative cache remembered the token's rejection
	LayerDedup                      // dedup: a twin check of the same request (x-request-id) decided
	LayerVerified                   // verified: the token was read and verified for this check
)

var layerLabels = [...]string{"none", "token_cache", "negative_cache", "dedup", "verified"}

// String returns the layer's label, e.g. "token_cache".
func (l Layer) String() string {
	if int(l) < len(layerLabels) {
		return layerLabels[l]
	}
	return "unknown"
}

// Deadline implements cache.Expiring, for the request dedup.
func (d Decision) Deadline() int64 { return d.until }

// Status returns the HTTP status of the decision: 200 for an allow, even
// one that keeps a failed token's reason (FailedOpen). A denial is never
// 200, whatever its reason says: fail closed.
func (d *Decision) Status() int {
	if d.Allow {
		return http.StatusOK
	}
	s := d.Reason.Status()
	if s == http.StatusOK {
		return http.StatusUnauthorized
	}
	return s
}

// deny returns a denial for r with its prepared challenge and body.
func deny(r Reason) Decision {
	return Decision{Reason: r, Challenge: challenges[r], Body: bodies[r]}
}
