package authz_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// The published JWT/JWS test vectors (../shared/vectors beside the
// repository, or $JWTAUTHZ_VECTORS; not copied into it) run through the
// engine: Envoy's jwt_authn and google/jwt_verify_lib cases, Wycheproof's
// JWS and JWK vectors, and the RFC 7515/8037 examples.
//
// A vector the reference refuses must be denied (0 wrong allows). A vector
// it accepts must be allowed (0 wrong denies), unless jwtauthz's documented
// policy refuses it: then the denial must be for that reason, and the
// vector is listed under it. The policy, as the test reads it from the
// vector alone:
//   - only compact JWS, in an Authorization: Bearer header;
//   - only the asymmetric algorithms of authz.DefaultAlgorithms (no HMAC,
//     no "none");
//   - a payload that is a JSON claims set with iss, and exp (required);
//   - exp, nbf and iat hold at the vector's clock, with its skew;
//   - a key set that jwks.Parse takes (strict JSON, a "keys" array, RSA of
//     2048 to 4096 bits without the ROCA fingerprint, no symmetric key).
//
// The clock: a vector checked at the wall clock runs at the wall clock; one
// that jwt_verify_lib checks at a fixed time of 1 s runs at the first second
// its token is valid, max(1 s, iat), since jwtauthz checks iat, which that
// library does not; an RFC example (signature only) runs a second before its
// exp. Vectors of one any_of group cut a key set to each of its keys: one of
// them signed the token, so at least one must be allowed, and the others
// are denied as not the signer.
func TestPublishedVectors(t *testing.T) {
	dir := vectorsDir(t)
	if dir == "" {
		t.Skip("no published vectors beside the repository (../shared/vectors; or set JWTAUTHZ_VECTORS)")
	}
	var cases []vectorCase
	cases = append(cases, referenceCases(t, dir, "envoy_jwt_authn.json")...)
	cases = append(cases, referenceCases(t, dir, "jwt_verify_lib.json")...)
	cases = append(cases, referenceCases(t, dir, "rfc_examples.json")...)
	cases = append(cases, wycheproofCases(t, dir, "wycheproof_json_web_signature_test.json")...)
	cases = append(cases, wycheproofCases(t, dir, "wycheproof_json_web_key_test.json")...)
	if len(cases) < 500 {
		t.Fatalf("%d vectors read from %s, want the whole set", len(cases), dir)
	}
	var tally vectorTally
	groups := map[string][]vectorResult{}
	for _, vc := range cases {
		r := vc.run(t)
		tally.add(t, r)
		if vc.anyOf != "" {
			groups[vc.anyOf] = append(groups[vc.anyOf], r)
		}
	}
	for name, rs := range groups {
		allowed, usable := false, false
		for _, r := range rs {
			allowed = allowed || r.d.Allow
			usable = usable || len(r.policy) == 0
		}
		if usable && !allowed {
			tally.wrongDeny++
			t.Errorf("WRONG DENY: any_of %s: none of its %d key sets allowed the token", name, len(rs))
		}
	}
	tally.report(t)
}

// vectorCase is one token to check against one key set.
type vectorCase struct {
	name   string
	valid  bool   // the reference accepts it
	anyOf  string // the group of which one must pass, if any
	doc    string // the key set, as published
	auth   *string
	iss    string
	aud    []string
	skew   time.Duration
	clock  time.Time
	policy []refusal // what jwtauthz's policy refuses in it
}

// refusal is one reason jwtauthz's policy refuses a vector, and the
// reasons of the denial it may give for it.
type refusal struct {
	why     string
	reasons []authz.Reason
}

type vectorResult struct {
	vc     *vectorCase
	d      authz.Decision
	policy []refusal
}

func (vc *vectorCase) run(t *testing.T) vectorResult {
	set, err := jwks.Parse([]byte(vc.doc), vc.clock)
	switch {
	case err != nil:
		vc.policy = append(vc.policy, refusal{"key set refused by jwks.Parse: " + keySetError(vc.doc, err), []authz.Reason{authz.ReasonUnavailable}})
	case vc.valid && vc.auth != nil:
		vc.policy = append(vc.policy, keyPolicy(t, vc.doc, set, strings.TrimPrefix(*vc.auth, "Bearer "))...)
	}
	cfg := authz.DefaultConfig()
	cfg.CacheSize, cfg.NegativeCacheSize, cfg.DedupSize = 16, 16, 16
	cfg.ClockSkew = vc.skew
	cfg.Now = func() time.Time { return vc.clock }
	iss := vc.iss
	if iss == "" {
		iss = "https://no-issuer.example" // a provider needs one; the token then has none to match
	}
	cfg.Providers = []authz.ProviderConfig{{Name: "v", Issuer: iss, Audiences: vc.aud, Keys: setKeys{set}}}
	e, err := authz.New(cfg)
	if err != nil {
		t.Fatalf("%s: %v", vc.name, err)
	}
	defer e.Close()
	h := authz.MapHeaders{}
	if vc.auth != nil {
		h["authorization"] = *vc.auth
	}
	d := e.Check(context.Background(), &authz.Request{Method: "GET", Host: "api.example.com", Path: "/", Headers: h})
	return vectorResult{vc: vc, d: d, policy: vc.policy}
}

// vectorTally counts the outcomes and asserts each.
type vectorTally struct {
	total, allowed, denied, anyOfOthers, wrongAllow, wrongDeny int
	byPolicy                                                   map[string]int
}

func (ta *vectorTally) add(t *testing.T, r vectorResult) {
	ta.total++
	vc, d := r.vc, r.d
	switch {
	case !vc.valid && d.Allow:
		ta.wrongAllow++
		t.Errorf("WRONG ALLOW: %s", vc.name)
	case !vc.valid:
		ta.denied++
	case vc.anyOf != "" && !d.Allow && slices.Contains([]authz.Reason{authz.ReasonBadSignature, authz.ReasonUnknownKID, authz.ReasonKeyMismatch}, d.Reason):
		ta.anyOfOthers++ // the key set cut to a key that did not sign it
	case len(r.policy) > 0 && d.Allow:
		ta.wrongAllow++
		t.Errorf("WRONG ALLOW: %s: allowed, though the policy refuses it: %s", vc.name, r.policy[0].why)
	case len(r.policy) > 0:
		for _, p := range r.policy {
			if slices.Contains(p.reasons, d.Reason) {
				if ta.byPolicy == nil {
					ta.byPolicy = map[string]int{}
				}
				ta.byPolicy[p.why]++
				t.Logf("refused by policy: %s: %s (%v)", vc.name, p.why, d.Reason)
				return
			}
		}
		ta.wrongDeny++
		t.Errorf("WRONG DENY: %s: %v, but the policy refuses it for %s", vc.name, d.Reason, r.policy[0].why)
	case d.Allow:
		ta.allowed++
	default:
		ta.wrongDeny++
		t.Errorf("WRONG DENY: %s: %v", vc.name, d.Reason)
	}
}

func (ta *vectorTally) report(t *testing.T) {
	refused := 0
	var whys []string
	for why, n := range ta.byPolicy {
		refused += n
		whys = append(whys, fmt.Sprintf("%4d  %s", n, why))
	}
	sort.Strings(whys)
	t.Logf("published vectors: %d; allowed %d; denied as the reference denies %d; refused by policy %d; "+
		"any_of key sets that did not sign the token %d; wrong allows %d; wrong denies %d",
		ta.total, ta.allowed, ta.denied, refused, ta.anyOfOthers, ta.wrongAllow, ta.wrongDeny)
	for _, w := range whys {
		t.Logf("  refused by policy: %s", w)
	}
}

// setKeys is a KeySource over one parsed set (nil: none loaded).
type setKeys struct{ set *jwks.Set }

func (k setKeys) Key(kid string) (crypto.PublicKey, string, bool) {
	key, ok := k.set.Lookup(kid)
	if !ok {
		return nil, "", false
	}
	return key.Public, key.Alg, true
}
func (k setKeys) Ready() bool                                               { return k.set != nil }
func (k setKeys) Refresh(context.Context) bool                              { return false }
func (k setKeys) EachKey(yield func(key crypto.PublicKey, alg string) bool) { k.set.EachKey(yield) }
func (k setKeys) HasKey(key crypto.PublicKey) bool                          { return k.set.HasKey(key) }

func keySetError(doc string, err error) string {
	var v struct {
		Keys json.RawMessage `json:"keys"`
	}
	switch {
	case !json.Valid([]byte(doc)):
		return "not valid JSON"
	case json.Unmarshal([]byte(doc), &v) != nil || v.Keys == nil:
		return "no \"keys\" array (an x509 certificate map, or not a key set)"
	case errors.Is(err, jwks.ErrNoUsableKey):
		return "no usable key (symmetric, encryption, unsupported or malformed keys only)"
	}
	return err.Error()
}

// vectorsDir is ../shared/vectors beside the module's root, or
// $JWTAUTHZ_VECTORS; "" if it does not exist.
func vectorsDir(t *testing.T) string {
	if d := os.Getenv("JWTAUTHZ_VECTORS"); d != "" {
		return d
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(root)
		if up == root {
			return ""
		}
		root = up
	}
	d := filepath.Join(root, "..", "shared", "vectors")
	if _, err := os.Stat(d); err != nil {
		return ""
	}
	return d
}

// referenceFile is the shape of the Envoy, jwt_verify_lib and RFC files.
type referenceFile struct {
	JWKS    map[string]struct{ Text string } `json:"jwks"`
	Vectors []struct {
		Name          string          `json:"name"`
		JWKS          string          `json:"jwks"`
		Token         string          `json:"token"`
		Authorization json.RawMessage `json:"authorization"` // absent: Bearer token; null: none
		Issuer        string          `json:"issuer"`
		Audiences     []string        `json:"audiences"`
		Expect        string          `json:"expect"`
		ReferenceTime string          `json:"reference_time"`
		ClockSkew     string          `json:"clock_skew"`
		AnyOf         string          `json:"any_of"`
		Fuzz          *struct {
			Bits, Length string
		} `json:"fuzz"`
	} `json:"vectors"`
}

func referenceCases(t *testing.T, dir, file string) []vectorCase {
	var f referenceFile
	readJSON(t, filepath.Join(dir, file), &f)
	var out []vectorCase
	for i, v := range f.Vectors {
		set, ok := f.JWKS[v.JWKS]
		if !ok {
			t.Fatalf("%s: vector %d names key set %q, not in the file", file, i, v.JWKS)
		}
		vc := vectorCase{name: fmt.Sprintf("%s #%d %s", file, i, v.Name), valid: v.Expect == "Ok", doc: set.Text,
			iss: v.Issuer, aud: v.Audiences, skew: authz.DefaultClockSkew}
		if v.AnyOf != "" {
			vc.anyOf = file + " " + v.AnyOf
		}
		if v.ClockSkew != "" {
			d, err := time.ParseDuration(v.ClockSkew)
			if err != nil {
				t.Fatalf("%s: clock_skew %q: %v", vc.name, v.ClockSkew, err)
			}
			vc.skew = d
		}
		switch {
		case len(v.Authorization) == 0:
			a := "Bearer " + v.Token
			vc.auth = &a
		case string(v.Authorization) != "null":
			var a string
			if err := json.Unmarshal(v.Authorization, &a); err != nil {
				t.Fatalf("%s: authorization: %v", vc.name, err)
			}
			vc.auth = &a
		}
		claims := payloadOf(v.Token)
		switch {
		case strings.HasPrefix(v.ReferenceTime, "1 "):
			vc.clock = time.Unix(max(1, claims.num("iat")), 0)
		case strings.HasPrefix(v.ReferenceTime, "n/a: the RFC checks the signature only") && claims.has("exp"):
			vc.clock = time.Unix(claims.num("exp")-1, 0)
		default: // the wall clock, or a parse test (any clock)
			vc.clock = time.Now()
		}
		if vc.valid {
			vc.policy = policyOf(v.Token, vc.clock, vc.skew)
		}
		out = append(out, vc)
		if v.Fuzz != nil && v.Token != "" { // a bit of the signature flipped, and a byte cut off: refused
			for _, tok := range []string{flipSignatureBit(v.Token), cutSignature(v.Token)} {
				fz := vc
				fz.name, fz.valid, fz.anyOf, fz.policy = vc.name+" [fuzzed]", false, "", nil
				a := "Bearer " + tok
				fz.auth = &a
				out = append(out, fz)
			}
		}
	}
	return out
}

// wycheproofFile is the shape of Wycheproof's JWS and JWK vector files.
type wycheproofFile struct {
	TestGroups []struct {
		Comment string          `json:"comment"`
		Private json.RawMessage `json:"private"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    json.RawMessage `json:"tcId"`
			Comment string          `json:"comment"`
			JWS     json.RawMessage `json:"jws"`
			Result  string          `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func wycheproofCases(t *testing.T, dir, file string) []vectorCase {
	var f wycheproofFile
	readJSON(t, filepath.Join(dir, file), &f)
	var out []vectorCase
	for _, g := range f.TestGroups {
		key := g.Public // the public half, as an IdP publishes it; a symmetric key has only the other
		if len(key) == 0 {
			key = g.Private
		}
		doc := string(key)
		if !strings.Contains(doc, `"keys"`) {
			doc = `{"keys":[` + doc + `]}`
		}
		for _, tc := range g.Tests {
			var jws string
			if err := json.Unmarshal(tc.JWS, &jws); err != nil {
				jws = string(tc.JWS) // an object: JSON serialization
			}
			auth := "Bearer " + jws
			vc := vectorCase{name: fmt.Sprintf("%s %s tc %s %s", file, g.Comment, tc.TcID, tc.Comment), doc: doc, auth: &auth,
				iss: "https://wycheproof.example", skew: authz.DefaultClockSkew, clock: time.Now()}
			switch tc.Result {
			case "valid":
				vc.valid = true
				vc.policy = policyOf(jws, vc.clock, vc.skew)
			case "invalid":
			default:
				t.Fatalf("%s: result %q", vc.name, tc.Result)
			}
			out = append(out, vc)
		}
	}
	return out
}

// policyOf returns what jwtauthz's policy refuses in tok, read from the
// token alone (the key set is judged by jwks.Parse).
func policyOf(tok string, now time.Time, skew time.Duration) []refusal {
	malformed := []authz.Reason{authz.ReasonMalformed}
	parts := strings.Split(tok, ".")
	switch {
	case len(parts) != 3 || strings.ContainsAny(tok, "{} \""):
		return []refusal{{"not a compact JWS (JSON serialization)", malformed}}
	case len(tok) > authz.DefaultMaxTokenSize:
		return []refusal{{fmt.Sprintf("longer than the default max_token_size (%d bytes)", authz.DefaultMaxTokenSize), []authz.Reason{authz.ReasonTooLarge}}}
	case strings.Contains(tok, "="):
		return []refusal{{"base64url with padding (RFC 7515 §2 has none)", malformed}}
	}
	var hdr struct{ Alg string }
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &hdr) != nil {
		return []refusal{{"header not base64url JSON", malformed}}
	}
	var out []refusal
	if !slices.Contains(authz.DefaultAlgorithms, hdr.Alg) {
		why := "alg " + hdr.Alg + " not accepted (HMAC and none never are)"
		if strings.HasPrefix(hdr.Alg, "HS") {
			why = "alg HS* not accepted (HMAC never is)"
		}
		out = append(out, refusal{why, []authz.Reason{authz.ReasonAlgNotAllowed, authz.ReasonMalformed}})
	}
	c := payloadOf(tok)
	switch {
	case c == nil:
		return append(out, refusal{"payload not a JSON claims set", malformed})
	case !c.has("iss"):
		return append(out, refusal{"no iss", []authz.Reason{authz.ReasonMissingClaim}})
	case !c.has("exp"):
		out = append(out, refusal{"no exp (required)", []authz.Reason{authz.ReasonMissingClaim}})
	case time.Unix(c.num("exp"), 0).Add(skew).Compare(now) <= 0:
		out = append(out, refusal{"expired at the vector's clock", []authz.Reason{authz.ReasonExpired}})
	}
	for _, k := range []string{"nbf", "iat"} {
		if c.has(k) && time.Unix(c.num(k), 0).After(now.Add(skew)) {
			out = append(out, refusal{k + " after the vector's clock", []authz.Reason{authz.ReasonNotYetValid}})
		}
	}
	return out
}

// keyPolicy returns what jwtauthz's policy refuses in the key that should
// verify tok: the key its kid names skipped by jwks.Parse, or no key with
// its kid though the set has keys without kid (which jwt_verify_lib takes
// for any kid, and jwtauthz only for tokens without kid); for a token
// without kid, any key of the set skipped (which of them signed it is not
// known).
func keyPolicy(t *testing.T, doc string, set *jwks.Set, tok string) []refusal {
	var hdr struct{ Kid string }
	if b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0]); err == nil {
		json.Unmarshal(b, &hdr)
	}
	var entries struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &entries); err != nil {
		t.Fatalf("a key set that jwks.Parse took: %v", err)
	}
	skipped := map[int]string{} // entry: why
	for _, why := range set.Skipped {
		var i int
		if _, err := fmt.Sscanf(why, "key %d:", &i); err != nil {
			t.Fatalf("skip reason %q", why)
		}
		skipped[i] = why[strings.IndexByte(why, ':')+2:]
	}
	if _, ok := set.Lookup(hdr.Kid); ok && hdr.Kid != "" {
		return nil
	}
	unknown := []authz.Reason{authz.ReasonUnknownKID}
	var out []refusal
	for i, e := range entries.Keys {
		why, skip := skipped[i]
		switch {
		case hdr.Kid != "" && skip && e.Kid == hdr.Kid:
			out = append(out, refusal{"the key its kid names skipped by jwks.Parse: " + why, unknown})
		case hdr.Kid != "" && !skip && e.Kid == "":
			out = append(out, refusal{"a kid, and the set's keys without kid serve only tokens without kid", unknown})
		case hdr.Kid == "" && skip:
			out = append(out, refusal{"no kid, and a key of the set skipped by jwks.Parse: " + why, []authz.Reason{authz.ReasonUnknownKID, authz.ReasonBadSignature}})
		}
	}
	return out
}

// claimSet is a payload's members, nil if it is not a JSON object.
type claimSet map[string]any

func payloadOf(tok string) claimSet {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var c claimSet
	if json.Unmarshal(b, &c) != nil {
		return nil
	}
	return c
}

func (c claimSet) has(k string) bool { _, ok := c[k]; return ok }

func (c claimSet) num(k string) int64 {
	f, _ := c[k].(float64)
	return int64(f)
}

func flipSignatureBit(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		return tok + "x"
	}
	sig[len(sig)/2] ^= 0x10
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func cutSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		return tok[:i+1]
	}
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig[:len(sig)-1])
}

func readJSON(t *testing.T, path string, v any) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
