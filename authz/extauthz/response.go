package extauthz

import (
	"net/http"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Field numbers of the allow jwtauthz writes
// (envoy/service/auth/v3/external_auth.proto, envoy/config/core/v3/base.proto).
const (
	fRespStatus         = 1 // CheckResponse.status
	fRespOK             = 3 // CheckResponse.ok_response
	fOKHeaders          = 2 // OkHttpResponse.headers
	fOKHeadersToRemove  = 5 // OkHttpResponse.headers_to_remove
	fOKQueryToRemove    = 8 // OkHttpResponse.query_parameters_to_remove
	fOptionHeader       = 1 // HeaderValueOption.header
	fOptionAppendAction = 3 // HeaderValueOption.append_action
	overwriteOrAdd      = 2 // HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
)

// encodedResponse is a CheckResponse in its wire form: the codec hands its
// one buffer to gRPC as it is, and gRPC frees it once written. An allow is
// written straight from the Decision into a buffer of gRPC's pool, with no
// message built and no reflection; a fixed denial is bytes made once.
type encodedResponse struct {
	data mem.BufferSlice
	one  [1]mem.Buffer
}

// bytes returns the encoded response.
func (e *encodedResponse) bytes() []byte { return e.one[0].ReadOnlyData() }

func encoded(b mem.Buffer) *encodedResponse {
	e := &encodedResponse{one: [1]mem.Buffer{b}}
	e.data = e.one[:]
	return e
}

// encodedDenials are the denials of the reasons that deny, with their
// fixed challenge and body, encoded once. Their buffers are never freed and
// are shared by every stream: gRPC only reads them.
var encodedDenials [authz.NumReasons]*encodedResponse

func init() {
	for r := range authz.NumReasons {
		if r.Status() != http.StatusOK {
			b, err := proto.Marshal(denied(fixedDenial(r)))
			if err != nil {
				panic(err) // fixed strings: a bug
			}
			encodedDenials[r] = encoded(mem.SliceBuffer(b))
		}
	}
}

// encodedDenial returns the encoded denial of d's reason, nil if it has
// none (a reason that allows, or one out of range).
func encodedDenial(d *authz.Decision) *encodedResponse {
	if d.Reason < authz.NumReasons {
		return encodedDenials[d.Reason]
	}
	return nil
}

// encodeResponse returns d as the bytes CheckResponse(d) marshals to.
func encodeResponse(d *authz.Decision) *encodedResponse {
	em := metaOf(d)
	if !d.Allow {
		if e := encodedDenial(d); e != nil && isFixed(d) {
			if em == nil {
				return e
			}
			if f := em.fixedDenialOf(d); f != nil {
				return f
			}
		}
		b, err := proto.Marshal(denied(d))
		if err != nil {
			// Strings that are not UTF-8 in a challenge or a body: deny
			// all the same, with the reason's fixed answer if it has one.
			if e := encodedDenial(d); e != nil {
				return e
			}
			return encodedDenials[authz.ReasonBadRequest]
		}
		if em != nil {
			b = insertMeta(b, em, d)
		}
		return encoded(mem.SliceBuffer(b))
	}
	if d.CookieSet && !utf8.ValidString(d.Cookie) {
		// The one value taken from the request: proto3 strings are UTF-8,
		// and Envoy would fail to parse the response.
		return encodedDenials[authz.ReasonBadRequest]
	}
	ok := okSize(d)
	n := 3 + protowire.SizeVarint(uint64(ok)) + ok
	meta := 0 // the Struct's size
	if em != nil {
		meta = metaSize(d, em)
		n += metaFieldSize(meta)
	}
	var pool mem.BufferPool = allowPool
	if n > allowBufSize {
		pool = mem.DefaultBufferPool()
	}
	buf := pool.Get(n)
	*buf = appendAllow((*buf)[:0], d, ok, em, meta)
	return encoded(mem.NewBuffer(buf, pool))
}

// allowBufSize is the room of allowPool's buffers: just above gRPC's pooling
// threshold (1 KiB), below which mem.NewBuffer would not give a freed
// buffer back, and room for every allow but those with many or long
// headers, which take a buffer of gRPC's pool.
const allowBufSize = 1<<10 + 64

// allowPool holds the buffers allows are written into. Unlike gRPC's pool
// (whose smallest class above the threshold is 4 KiB) it does not clear a
// buffer it hands out again: an allow is written from the buffer's first
// byte, and only what was written is sent. Clearing 4 KiB was about a
// quarter of the instructions of writing an allow.
var allowPool = &bufPool{p: sync.Pool{New: func() any { b := make([]byte, 0, allowBufSize); return &b }}}

// bufPool is a mem.BufferPool of buffers of allowBufSize.
type bufPool struct{ p sync.Pool }

// Get implements mem.BufferPool for n up to allowBufSize.
func (p *bufPool) Get(n int) *[]byte {
	b := p.p.Get().(*[]byte)
	*b = (*b)[:n]
	return b
}

// Put implements mem.BufferPool.
func (p *bufPool) Put(b *[]byte) {
	if cap(*b) == allowBufSize {
		p.p.Put(b)
	}
}

// The allow, as CheckResponse builds it: status OK (an empty
// google.rpc.Status, present), then ok_response with the headers to set
// (subject, issuer, d.Set, a rewritten cookie), the headers to remove, and
// the query parameters to remove. Empty strings are left out, as proto3
// leaves them out.

func okSize(d *authz.Decision) int {
	n := 0
	if d.Subject != "" {
		n += sizeBytes(optionSize(authz.HeaderSubject, d.Subject))
	}
	if d.Issuer != "" {
		n += sizeBytes(optionSize(authz.HeaderIssuer, d.Issuer))
	}
	for _, h := range d.Set {
		n += sizeBytes(optionSize(h.Name, h.Value))
	}
	for _, s := range d.Remove {
		n += sizeBytes(len(s))
	}
	if d.CookieSet {
		if d.Cookie == "" {
			n += sizeBytes(len("cookie"))
		} else {
			n += sizeBytes(optionSize("cookie", d.Cookie))
		}
	}
	for _, s := range d.RemoveQuery {
		n += sizeBytes(len(s))
	}
	return n
}

// sizeBytes is the size of a length-delimited field of n bytes whose field
// number is below 16.
func sizeBytes(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return sizeBytes(len(s))
}

func headerSize(name, value string) int { return stringSize(name) + stringSize(value) }

func optionSize(name, value string) int { return sizeBytes(headerSize(name, value)) + 2 }

// appendAllow appends the allow d, whose ok_response is ok bytes long, and
// its metadata em (nil: none), a Struct of meta bytes. The metadata comes
// before ok_response, as proto.Marshal writes a oneof after the other
// fields.
func appendAllow(b []byte, d *authz.Decision, ok int, em *encodedMeta, meta int) []byte {
	b = append(b, fRespStatus<<3|byte(protowire.BytesType), 0)
	if em != nil {
		b = appendMeta(b, em, d, meta)
	}
	b = append(b, fRespOK<<3|byte(protowire.BytesType))
	b = appendLen(b, ok)
	if d.Subject != "" {
		b = appendOption(b, authz.HeaderSubject, d.Subject)
	}
	if d.Issuer != "" {
		b = appendOption(b, authz.HeaderIssuer, d.Issuer)
	}
	for _, h := range d.Set {
		b = appendOption(b, h.Name, h.Value)
	}
	if d.CookieSet && d.Cookie != "" {
		b = appendOption(b, "cookie", d.Cookie)
	}
	for _, s := range d.Remove {
		b = appendString(b, fOKHeadersToRemove, s)
	}
	if d.CookieSet && d.Cookie == "" {
		b = appendString(b, fOKHeadersToRemove, "cookie")
	}
	for _, s := range d.RemoveQuery {
		b = appendString(b, fOKQueryToRemove, s)
	}
	return b
}

func appendOption(b []byte, name, value string) []byte {
	h := headerSize(name, value)
	b = append(b, fOKHeaders<<3|byte(protowire.BytesType))
	b = appendLen(b, sizeBytes(h)+2)
	b = append(b, fOptionHeader<<3|byte(protowire.BytesType))
	b = appendLen(b, h)
	if name != "" {
		b = appendString(b, fHeaderValueKey, name)
	}
	if value != "" {
		b = appendString(b, fHeaderValueValue, value)
	}
	return append(b, fOptionAppendAction<<3|byte(protowire.VarintType), overwriteOrAdd)
}

// appendString appends a string field whose number is below 16, even an
// empty one (a header name to remove is never empty).
func appendString(b []byte, num protowire.Number, s string) []byte {
	b = append(b, byte(num)<<3|byte(protowire.BytesType))
	return append(appendLen(b, len(s)), s...)
}

// appendLen appends a length: one byte, inline, for the usual short ones.
func appendLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}
