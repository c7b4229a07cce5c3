package authz

import (
	"context"
	"reflect"
	"strings"
	"sync"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// holds reports whether c, a require.when, holds for the request r and
// the grant g under the policy of generation gen. An error, a cost over
// the limit or anything but true is false. When g was made under that
// policy and keeps the outcome of c's token part, only c's rest is
// evaluated, if it has one.
func (c *condition) holds(r *Request, g *Grant, gen uint64) bool {
	if c.slot >= 0 && g.extra != nil && g.extra.cel != nil {
		if cg := g.extra.cel; cg.gen == gen && cg.known>>c.slot&1 != 0 {
			if cg.held>>c.slot&1 == 0 {
				return false
			}
			return c.rest == nil || c.rest.test(r, "", false, g) == types.True
		}
	}
	return c.test(r, "", false, g) == types.True
}

// test evaluates c for the request r and the grant g (nil in match.when):
// types.True, types.False, or an error. request.path is path if hasPath,
// else r's as matchPath cleans it.
func (c *condition) test(r *Request, path string, hasPath bool, g *Grant) ref.Val {
	e := celEvalPool.Get().(*celEval)
	v := &e.vars
	// r's fields, not r: r would escape to the heap, on every check.
	v.method, v.host, v.target, v.hdr.h = r.Method, r.Host, r.Path, r.Headers
	v.path, v.hasPath, v.g = path, hasPath, g
	var out ref.Val
	var err error
	if c.metered {
		// cel-go's cost tracking takes time that grows with the square of
		// a loop's length (a 64 KiB header split at commas: seconds) and
		// counts only the linear part: a deadline bounds it too.
		ctx, cancel := context.WithTimeout(context.Background(), ConditionTimeLimit)
		out, _, err = c.prg.ContextEval(ctx, v)
		cancel()
	} else {
		out, _, err = c.prg.Eval(&e.frame) // a frame of its own: cel-go takes none from its pool
	}
	*v = celVars{}
	celEvalPool.Put(e)
	if err != nil || (out != types.True && out != types.False) {
		return types.NewErr("condition failed")
	}
	return out
}

// celVars is the activation of one evaluation: it resolves each variable
// as it is read, from the request and the grant, without a map.
type celVars struct {
	method  string
	host    string
	target  string // the request's path, as sent
	path    string
	hasPath bool
	g       *Grant
	hdr     celHeaders
}

// celEval is an activation with the execution frame that evaluates with
// it, reused (celEvalPool). An unmetered evaluation leaves the frame as it
// found it: no context, no parent.
type celEval struct {
	vars  celVars
	frame interpreter.ExecutionFrame
}

var celEvalPool = sync.Pool{New: func() any {
	e := new(celEval)
	e.frame.Activation = &e.vars
	return e
}}

// ResolveName implements interpreter.Activation.
func (v *celVars) ResolveName(name string) (any, bool) {
	switch name {
	case "request.method":
		return celMethod(v.method), true
	case "request.host":
		return types.String(bareHost(v.host)), true
	case "request.path":
		if !v.hasPath {
			v.path, _, _, _ = matchPath(v.target)
		}
		return types.String(v.path), true
	case "request.query":
		return celQuery(v.target), true
	case "request.headers":
		return &v.hdr, true
	}
	if v.g == nil {
		return nil, false
	}
	return v.g.celVar(name)
}

// Parent implements interpreter.Activation.
func (v *celVars) Parent() interpreter.Activation { return nil }

var _ interpreter.Activation = (*celVars)(nil)

// celMethod is a request's method as a CEL value: the common ones made
// once, so that reading request.method builds none.
func celMethod(m string) ref.Val {
	switch m {
	case "GET":
		return celGET
	case "HEAD":
		return celHEAD
	case "POST":
		return celPOST
	case "PUT":
		return celPUT
	case "PATCH":
		return celPATCH
	case "DELETE":
		return celDELETE
	case "OPTIONS":
		return celOPTIONS
	}
	return types.String(m)
}

var (
	celGET, celHEAD, celPOST, celPUT ref.Val = types.String("GET"), types.String("HEAD"), types.String("POST"), types.String("PUT")
	celPATCH, celDELETE, celOPTIONS  ref.Val = types.String("PATCH"), types.String("DELETE"), types.String("OPTIONS")
)

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
