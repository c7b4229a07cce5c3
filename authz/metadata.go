package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// Metadata is what a check tells the proxy beside its answer, for the
// filters after it and its access log: Envoy's dynamic metadata. An allow
// with a token tells its sub and iss (Decision.Subject, Decision.Issuer),
// its provider, and the provider's MetadataClaims the token carries; a
// denial tells its reason and the provider it counts under ("" if none); a
// public or anonymous allow tells its reason alone.
//
// A Metadata is made once, never per check: per grant (with claims), per
// provider, per provider and reason, per reason. It is never changed once
// made, so an adapter may keep its encoding of it (SetEncoded).
type Metadata struct {
	// Provider is the provider's name; "" for none.
	Provider string
	// Reason is the label of a denial's reason, or of a public or anonymous
	// allow's; "" on an allow with a token.
	Reason string
	// Claims are the provider's MetadataClaims the token carries, sorted
	// by name.
	Claims []MetadataClaim

	enc atomic.Pointer[any]
}

// MetadataClaim is one claim of a token's metadata: its name as configured
// (a dotted path stays one name), and its value with its JSON type: a
// string, a float64, a bool, nil, a []any or a map[string]any of these, as
// encoding/json decodes it.
type MetadataClaim struct {
	Name  string
	Value any
}

// Encoded returns what an adapter stored with SetEncoded; nil if nothing.
func (m *Metadata) Encoded() any {
	if p := m.enc.Load(); p != nil {
		return *p
	}
	return nil
}

// SetEncoded keeps v, an adapter's encoding of m, for Encoded. The adapter
// owns it: authz never reads it. Two checks may store at once; both store
// the same encoding.
func (m *Metadata) SetEncoded(v any) { m.enc.Store(&v) }

// Limits of a metadata claim: one whose JSON text in the token is longer
// than MaxMetadataClaimSize, or that nests arrays and objects deeper than
// MaxMetadataDepth, is left out of the metadata.
const (
	MaxMetadataClaimSize = 1024
	MaxMetadataDepth     = 8
)

// MetadataKeys are the keys every metadata may have: a claim may not be
// named like one.
var MetadataKeys = []string{"sub", "iss", "provider", "reason"}

var errMetadataClaim = errors.New("is not a claim name or dotted path")

// CheckMetadataClaim reports whether name may be a metadata claim: a claim
// name or a dotted path (no empty part, no control character), and not one
// of MetadataKeys.
func CheckMetadataClaim(name string) error {
	if slices.Contains(MetadataKeys, name) {
		return fmt.Errorf("%q is always sent (%s): name another claim", name, strings.Join(MetadataKeys, ", "))
	}
	if name == "" || slices.Contains(strings.Split(name, "."), "") || !utf8.ValidString(name) || checkPrintable(name) != nil {
		return fmt.Errorf("%q %w", name, errMetadataClaim)
	}
	return nil
}

// reasonMetadata are the metadata of the denials that name no provider, and
// of public and anonymous allows: the reason alone.
var reasonMetadata = func() (ms [numReasons]*Metadata) {
	for r := range numReasons {
		if r != ReasonOK {
			ms[r] = &Metadata{Reason: r.String()}
		}
	}
	return ms
}()

// providerMetadata is a provider's prepared metadata: nil if it sends none
// (ProviderConfig.NoMetadata).
type providerMetadata struct {
	claims []string // MetadataClaims, sorted
	allow  *Metadata
	deny   [numReasons]*Metadata
}

func newProviderMetadata(cfg *ProviderConfig) (*providerMetadata, error) {
	if cfg.NoMetadata {
		if len(cfg.MetadataClaims) > 0 {
			return nil, errors.New("metadata claims are set, but metadata is off")
		}
		return nil, nil
	}
	pm := &providerMetadata{allow: &Metadata{Provider: cfg.Name}}
	for _, c := range cfg.MetadataClaims {
		if err := CheckMetadataClaim(c); err != nil {
			return nil, fmt.Errorf("metadata claim %w", err)
		}
		if slices.Contains(pm.claims, c) {
			return nil, fmt.Errorf("metadata claim %q is named twice", c)
		}
		pm.claims = append(pm.claims, c)
	}
	slices.Sort(pm.claims)
	for r := range numReasons {
		if reasons[r].status != 200 {
			pm.deny[r] = &Metadata{Provider: cfg.Name, Reason: r.String()}
		}
	}
	return pm, nil
}

// forClaims returns the metadata of a token whose claims are all: the
// provider's, or a grant's own if the token carries any of the metadata
// claims. all may be a JWT's payload or an introspection answer's members.
func (pm *providerMetadata) forClaims(all map[string]json.RawMessage) *Metadata {
	var cs []MetadataClaim
	for _, name := range pm.claims {
		raw := claimAt(all, name)
		if len(raw) == 0 || len(raw) > MaxMetadataClaimSize || depth(raw) > MaxMetadataDepth {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		cs = append(cs, MetadataClaim{name, v})
	}
	if cs == nil {
		return pm.allow
	}
	return &Metadata{Provider: pm.allow.Provider, Claims: cs}
}

// depth is how deeply raw, valid JSON, nests arrays and objects: 0 for a
// scalar.
func depth(raw []byte) int {
	d, most, quoted := 0, 0, false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '[' || c == '{':
			d++
			most = max(most, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return most
}

// metadata returns the grant's metadata: its own, or its provider's; nil
// if the provider sends none.
func (g *Grant) metadata() *Metadata {
	if g.extra != nil && g.extra.meta != nil {
		return g.extra.meta
	}
	if g.p.meta == nil {
		return nil
	}
	return g.p.meta.allow
}

// withMetadata sets d.Metadata: the grant's on an allow with a token, the
// reason's on a public or anonymous allow, and on a denial the one of its
// reason and provider (nil if the provider sends none).
func (pol *policy) withMetadata(d *Decision) {
	switch {
	case d.grant != nil && d.Allow:
		d.Metadata = d.grant.metadata()
	case d.Reason >= numReasons || d.Reason == ReasonOK:
		d.Metadata = nil
	case d.Provider == "":
		d.Metadata = reasonMetadata[d.Reason]
	default:
		d.Metadata = reasonMetadata[d.Reason]
		for _, p := range pol.providers {
			if p.name == d.Provider {
				d.Metadata = nil
				if p.meta != nil {
					d.Metadata = p.meta.deny[d.Reason]
				}
				break
			}
		}
	}
}
