package authz

import (
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// celGrant is what a grant keeps for the policy's conditions, as CEL values
// made once, when the token is verified: the claims they read (or all of
// them), the scopes, and the provider's name.
type celGrant struct {
	claims, scopes, provider ref.Val
}

// celNeeds is what a policy's require.when conditions read of a token.
type celNeeds struct {
	claims            []string // by name
	allClaims, scopes bool
	any               bool // some condition reads claims, scopes or provider
}

// add records what c reads.
func (n *celNeeds) add(c *condition) {
	if c == nil {
		return
	}
	n.any = true
	n.allClaims = n.allClaims || c.allClaims
	n.scopes = n.scopes || c.scopes
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
	if !n.any || next.allClaims && !n.allClaims || next.scopes && !n.scopes {
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
// of pol; nil when none reads the token.
func newCELGrant[V any](n *celNeeds, p *provider, all map[string]V, scopes []string) *celGrant {
	if !n.any {
		return nil
	}
	m := celMap{}
	if n.allClaims {
		for k, v := range all {
			if cv := celValue(v); cv != nil {
				m[k] = cv
			}
		}
	} else {
		for _, k := range n.claims {
			if v, ok := all[k]; ok {
				if cv := celValue(v); cv != nil {
					m[k] = cv
				}
			}
		}
	}
	cg := &celGrant{claims: m, provider: types.String(p.name)}
	if n.scopes {
		cg.scopes = types.NewStringList(types.DefaultTypeAdapter, scopes)
	}
	return cg
}

// emptyCELGrant is a grant's CEL values when it keeps none: no claims, no
// scopes.
var emptyCELGrant = celGrant{
	claims: celMap{},
	scopes: types.NewStringList(types.DefaultTypeAdapter, nil),
}

// celExtra returns g's CEL values.
func (g *Grant) celExtra() *celGrant {
	if g.extra != nil && g.extra.cel != nil {
		return g.extra.cel
	}
	cg := emptyCELGrant
	cg.provider = types.String(g.p.name)
	return &cg
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
		m := make(celMap, len(v))
		for k, x := range v {
			if cv := celValue(x); cv != nil {
				m[k] = cv
			}
		}
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
	m := make(celMap, len(vals))
	for k, vs := range vals {
		m[k] = types.NewStringList(types.DefaultTypeAdapter, vs)
	}
	return m
}

// celMap is a JSON object or the query as a CEL map: a lookup by a string
// key hashes a string, not an interface.
type celMap map[string]ref.Val

var _ traits.Mapper = celMap(nil)

// Find implements traits.Mapper.
func (m celMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	v, ok := m[string(k)]
	return v, ok
}

// Get implements traits.Indexer.
func (m celMap) Get(key ref.Val) ref.Val {
	if v, ok := m.Find(key); ok {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (m celMap) Contains(key ref.Val) ref.Val {
	_, ok := m.Find(key)
	return types.Bool(ok)
}

// Size implements traits.Sizer.
func (m celMap) Size() ref.Val { return types.Int(len(m)) }

// generic is m as cel-go's own map, for what is rarely asked: listing,
// comparing, converting.
func (m celMap) generic() traits.Mapper {
	g := make(map[ref.Val]ref.Val, len(m))
	for k, v := range m {
		g[types.String(k)] = v
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, g)
}

// Iterator implements traits.Iterable.
func (m celMap) Iterator() traits.Iterator { return m.generic().Iterator() }

// Equal implements ref.Val.
func (m celMap) Equal(other ref.Val) ref.Val { return m.generic().Equal(other) }

// ConvertToNative implements ref.Val.
func (m celMap) ConvertToNative(t reflect.Type) (any, error) { return m.generic().ConvertToNative(t) }

// ConvertToType implements ref.Val.
func (m celMap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}

// Type implements ref.Val.
func (m celMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m celMap) Value() any { return map[string]ref.Val(m) }

// celHeaders is request.headers: a map read by name only (compileCondition
// refuses any other use). A name is compared in lower case; a header that
// is absent or empty is not in it.
type celHeaders struct{ h Headers }

var _ traits.Mapper = (*celHeaders)(nil)

func (c *celHeaders) get(key ref.Val) (string, bool) {
	k, ok := key.(types.String)
	if !ok || c.h == nil {
		return "", false
	}
	v := c.h.Get(strings.ToLower(string(k)))
	return v, v != ""
}

// Find implements traits.Mapper.
func (c *celHeaders) Find(key ref.Val) (ref.Val, bool) {
	if _, ok := key.(types.String); !ok {
		return types.ValOrErr(key, "no such overload"), false
	}
	if v, ok := c.get(key); ok {
		return types.String(v), true
	}
	return nil, false
}

// Get implements traits.Indexer.
func (c *celHeaders) Get(key ref.Val) ref.Val {
	v, ok := c.Find(key)
	if !ok {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (c *celHeaders) Contains(key ref.Val) ref.Val {
	_, ok := c.get(key)
	return types.Bool(ok)
}

// Iterator implements traits.Iterable: the headers cannot be listed.
func (c *celHeaders) Iterator() traits.Iterator {
	return errIterator{types.NewErr("request.headers cannot be listed")}
}

// Size implements traits.Sizer: unknown, an error.
func (c *celHeaders) Size() ref.Val { return types.NewErr("request.headers cannot be counted") }

// ConvertToNative implements ref.Val: not supported.
func (c *celHeaders) ConvertToNative(reflect.Type) (any, error) { return nil, errHeadersNative }

// ConvertToType implements ref.Val.
func (c *celHeaders) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return types.MapType
	}
	return types.NewErr("request.headers cannot be converted")
}

// Equal implements ref.Val: not supported.
func (c *celHeaders) Equal(ref.Val) ref.Val {
	return types.NewErr("request.headers cannot be compared")
}

// Type implements ref.Val.
func (c *celHeaders) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (c *celHeaders) Value() any { return c.h }

var errHeadersNative = types.NewErr("request.headers cannot be converted").(*types.Err)

// errIterator is an iterator that has only an error.
type errIterator struct{ ref.Val }

// HasNext implements traits.Iterator.
func (it errIterator) HasNext() ref.Val { return it.Val }

// Next implements traits.Iterator.
func (it errIterator) Next() ref.Val { return it.Val }
