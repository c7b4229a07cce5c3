package authz

import (
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// celGrant is what a grant keeps for the policy's conditions, as CEL values
// made once, when the token is verified: the claims they read (or all of
// them), the scopes, and the provider's name if they read them.
type celGrant struct {
	claims           celObject
	scopes, provider ref.Val
	// gen is the generation of the policy the grant was made under;
	// known and held hold, bit by bit, the token parts of its split
	// conditions (celNeeds.split): known, the part was true or false;
	// held, it was true.
	gen, known, held uint64
}

// celNeeds is what a policy's require.when conditions read of a token.
type celNeeds struct {
	claims                      []string // by name
	allClaims, scopes, provider bool
	any                         bool // some condition reads claims, scopes or provider
	// split are the conditions whose token part a grant evaluates once,
	// each at its slot: the first celMaxSplit of those split has.
	split []*condition
}

// celMaxSplit is how many conditions a grant keeps the token part of.
const celMaxSplit = 64

// add records what c reads.
func (n *celNeeds) add(c *condition) {
	if c == nil {
		return
	}
	n.any = true
	if c.token != nil && len(n.split) < celMaxSplit {
		c.slot = len(n.split)
		n.split = append(n.split, c)
	}
	n.allClaims = n.allClaims || c.allClaims
	n.scopes = n.scopes || c.scopes
	n.provider = n.provider || c.provider
	for _, name := range c.claims {
		if !containsString(n.claims, name) {
			n.claims = append(n.claims, name)
		}
	}
}

// covers reports whether grants made for n hold what next reads.
func (n *celNeeds) covers(next *celNeeds) bool {
	if !next.any {
		return true
	}
	if !n.any || next.allClaims && !n.allClaims || next.scopes && !n.scopes || next.provider && !n.provider {
		return false
	}
	if n.allClaims {
		return true
	}
	for _, name := range next.claims {
		if !containsString(n.claims, name) {
			return false
		}
	}
	return true
}

// newCELGrant prepares the CEL values of a token whose claims are all (a
// JWT's payload members, or an introspection answer's), for the conditions
// n describes, and evaluates the token parts of those split, for the
// policy of generation gen; nil when no condition reads the token.
func newCELGrant[V any](n *celNeeds, gen uint64, p *provider, all map[string]V, scopes []string) *celGrant {
	if !n.any {
		return nil
	}
	cg := &celGrant{gen: gen}
	add := func(k string, v V) {
		if cv := celValue(v); cv != nil {
			cg.claims = append(cg.claims, celMember{k, cv})
		}
	}
	if n.allClaims {
		cg.claims = make(celObject, 0, len(all))
		for k, v := range all {
			add(k, v)
		}
	} else {
		for _, k := range n.claims {
			if v, ok := all[k]; ok {
				add(k, v)
			}
		}
	}
	cg.claims.sort()
	if n.scopes {
		cg.scopes = types.NewStringList(types.DefaultTypeAdapter, scopes)
	}
	if n.provider {
		cg.provider = types.String(p.name)
	}
	if len(n.split) > 0 {
		g := &Grant{p: p, extra: &grantExtra{cel: cg}}
		for i, c := range n.split {
			// An error is not kept: each check evaluates the condition
			// whole, as one that is not split (a deadline may pass once).
			switch c.token.test(&Request{}, "", true, g) {
			case types.True:
				cg.known |= 1 << i
				cg.held |= 1 << i
			case types.False:
				cg.known |= 1 << i
			}
		}
	}
	return cg
}

// noScopes is the scopes of a grant that keeps none.
var noScopes = types.NewStringList(types.DefaultTypeAdapter, nil)

// celVar returns the variable name (claims, scopes or provider) of g for
// a condition: from what g keeps (claims is a pointer into the grant: no
// copy), or none.
func (g *Grant) celVar(name string) (ref.Val, bool) {
	var cg *celGrant
	if g.extra != nil {
		cg = g.extra.cel
	}
	switch name {
	case "claims":
		if cg == nil {
			return celObject(nil), true
		}
		return &cg.claims, true
	case "scopes":
		if cg == nil || cg.scopes == nil {
			return noScopes, true
		}
		return cg.scopes, true
	case "provider":
		if cg == nil || cg.provider == nil {
			return types.String(g.p.name), true
		}
		return cg.provider, true
	}
	return nil, false
}

// celValue converts a claim to a CEL value: a JSON string, boolean, null,
// array or object as itself; a number as an int if it is a whole number
// within int64 (exp, iat, ids), else as a double. It takes a raw JSON
// member or a value json.Unmarshal made; nil for one it cannot read.
func celValue(v any) ref.Val {
	switch v := v.(type) {
	case json.RawMessage:
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var x any
		if d.Decode(&x) != nil {
			return nil
		}
		return celValue(x)
	case string:
		return types.String(v)
	case bool:
		return types.Bool(v)
	case nil:
		return types.NullValue
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return types.Int(i)
		}
		f, err := v.Float64()
		if err != nil {
			return nil
		}
		return celValue(f)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return types.Int(int64(v))
		}
		return types.Double(v)
	case []string:
		return types.NewStringList(types.DefaultTypeAdapter, v)
	case []any:
		l := make([]ref.Val, 0, len(v))
		for _, x := range v {
			if cv := celValue(x); cv != nil {
				l = append(l, cv)
			}
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	case map[string]any:
		m := make(celObject, 0, len(v))
		for k, x := range v {
			if cv := celValue(x); cv != nil {
				m = append(m, celMember{k, cv})
			}
		}
		m.sort()
		return m
	}
	return nil
}

// celQuery is the query of a request target as a map of lists: empty when
// it has none, or one that does not parse.
func celQuery(target string) ref.Val {
	_, q, _ := strings.Cut(target, "?")
	vals, err := url.ParseQuery(q)
	if err != nil {
		vals = url.Values{}
	}
	m := make(celObject, 0, len(vals))
	for k, vs := range vals {
		m = append(m, celMember{k, types.NewStringList(types.DefaultTypeAdapter, vs)})
	}
	m.sort()
	return m
}

// celObject is a JSON object or the query as a CEL map: its members sorted
// by name, found by binary search. It is smaller than a Go map (a grant
// keeps one), and a lookup hashes nothing.
type celObject []celMember

type celMember struct {
	k string
	v ref.Val
}

var _ traits.Mapper = celObject(nil)

func (m celObject) sort() {
	slices.SortFunc(m, func(a, b celMember) int { return strings.Compare(a.k, b.k) })
}

// Find implements traits.Mapper.
func (m celObject) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(m, string(k), func(e celMember, k string) int { return strings.Compare(e.k, k) })
	if !ok {
		return nil, false
	}
	return m[i].v, true
}

// Get implements traits.Indexer.
func (m celObject) Get(key ref.Val) ref.Val {
	if v, ok := m.Find(key); ok {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (m celObject) Contains(key ref.Val) ref.Val {
	_, ok := m.Find(key)
	return types.Bool(ok)
}

// Size implements traits.Sizer.
func (m celObject) Size() ref.Val { return types.Int(len(m)) }

// generic is m as cel-go's own map, for what is rarely asked: listing,
// comparing, converting.
func (m celObject) generic() traits.Mapper {
	g := make(map[ref.Val]ref.Val, len(m))
	for _, e := range m {
		g[types.String(e.k)] = e.v
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, g)
}

// Iterator implements traits.Iterable.
func (m celObject) Iterator() traits.Iterator { return m.generic().Iterator() }

// Equal implements ref.Val.
func (m celObject) Equal(other ref.Val) ref.Val { return m.generic().Equal(other) }

// ConvertToNative implements ref.Val.
func (m celObject) ConvertToNative(t reflect.Type) (any, error) {
	return m.generic().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (m celObject) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}

// Type implements ref.Val.
func (m celObject) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m celObject) Value() any { return m.generic().Value() }
