package extauthz

import (
	"errors"
	"math"
	"sync"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the CheckRequest path jwtauthz reads
// (envoy/service/auth/v3/{external_auth,attribute_context}.proto and
// envoy/config/core/v3/base.proto).
const (
	fCheckAttributes  = 1  // CheckRequest.attributes
	fAttrRequest      = 4  // AttributeContext.request
	fRequestHTTP      = 2  // AttributeContext.Request.http
	fHTTPMethod       = 2  // AttributeContext.HttpRequest.method
	fHTTPHeaders      = 3  // ... headers (map<string, string>)
	fHTTPPath         = 4  // ... path
	fHTTPHost         = 5  // ... host
	fHTTPHeaderMap    = 13 // ... header_map (with encode_raw_headers)
	fHeaderMapHeaders = 1  // HeaderMap.headers
	fHeaderValueKey   = 1  // HeaderValue.key, and a map entry's key
	fHeaderValueValue = 2  // HeaderValue.value, and a map entry's value
	fHeaderValueRaw   = 3  // HeaderValue.raw_value
)

// Bounds on the headers taken from one CheckRequest: their number (Envoy's
// own default limit is 100) and their bytes (Envoy's default is 60 KiB).
// Past either, the check is denied request_too_large.
const (
	maxWireHeaders     = 1024
	maxWireHeaderBytes = 64 << 10
)

var errWire = errors.New("extauthz: malformed CheckRequest")

// wireRequest is a CheckRequest read straight from its bytes: only the
// fields the core needs, as strings and spans that point into buf. Reading
// it costs no map, no string per header and no message per field, which is
// most of what unmarshalling a browser's CheckRequest costs. It is pooled:
// nothing may keep one of its strings after the check returns.
type wireRequest struct {
	buf                []byte     // the request: held, or in own
	held               mem.Buffer // gRPC's buffer of buf, freed by putWire
	own                []byte     // room for a request that came in pieces
	method, host, path string
	hdrs               []wireHeader // the headers map
	raw                []wireHeader // header_map, read only when hdrs is empty
	bytes              int          // of the headers read
	oversize           bool         // past a bound: the rest were not read
}

// wireHeader is a header's name and value as spans of wireRequest.buf:
// without pointers, so recording one costs no GC write barrier.
type wireHeader struct{ k, v span }

type span struct{ off, n uint32 }

var wirePool = sync.Pool{New: func() any { return &wireRequest{} }}

func getWire() *wireRequest { return wirePool.Get().(*wireRequest) }

// testHookPutWire, set by tests only, sees each wireRequest as its check
// ends, before its buffer goes: the poison test overwrites the buffer, so
// that a string kept past the check shows.
var testHookPutWire func(*wireRequest)

// putWire lets w's request go (its buffer back to gRPC's pool) and puts w
// back in its pool: every string the check read from it is then dead.
func putWire(w *wireRequest) {
	if testHookPutWire != nil {
		testHookPutWire(w)
	}
	if w.held != nil {
		w.held.Free()
	}
	if cap(w.own) > 1<<20 {
		return // a rare huge request: let it go
	}
	*w = wireRequest{own: w.own[:0], hdrs: w.hdrs[:0], raw: w.raw[:0]}
	wirePool.Put(w)
}

// view returns b as a string without copying; b must live in w.buf.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// spanOf returns where b, a slice of w.buf that runs to its end, is.
func (w *wireRequest) spanOf(b []byte) span {
	return span{uint32(cap(w.buf) - cap(b)), uint32(len(b))}
}

func (w *wireRequest) str(s span) string { return view(w.buf[s.off : s.off+s.n]) }

// parse reads w.buf. Like proto.Unmarshal, a field given twice takes its
// last value, a message given twice is merged, and a map key given twice
// keeps its last value; unknown fields are skipped. Method, host and path
// must be valid UTF-8, as proto3 requires (see addHeader for headers).
// There is no closure per level, and the common one-byte tags and lengths
// are read inline (next).
func (w *wireRequest) parse() error {
	if len(w.buf) > math.MaxUint32 {
		return errWire
	}
	return w.parseAt(w.buf, httpPath[:], (*wireRequest).parseHTTP)
}

// httpPath is where AttributeContext.HttpRequest is in a CheckRequest:
// attributes.request.http; headerMapPath is where a HeaderValue is in a
// HeaderMap.
var (
	httpPath      = [...]protowire.Number{fCheckAttributes, fAttrRequest, fRequestHTTP}
	headerMapPath = [...]protowire.Number{fHeaderMapHeaders}
)

// parseAt reads every message at path below b with leaf (a method
// expression: no closure to allocate).
func (w *wireRequest) parseAt(b []byte, path []protowire.Number, leaf func(*wireRequest, []byte) error) error {
	for len(b) > 0 {
		num, typ, v, n := next(b)
		if n < 0 {
			return errWire
		}
		if b = b[n:]; num != path[0] || typ != protowire.BytesType {
			continue
		}
		var err error
		if len(path) == 1 {
			err = leaf(w, v)
		} else {
			err = w.parseAt(v, path[1:], leaf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *wireRequest) parseHTTP(b []byte) error {
	for len(b) > 0 {
		if n := w.readHeaders(b); n > 0 {
			b = b[n:]
			continue
		}
		num, typ, v, n := next(b)
		if n < 0 {
			return errWire
		}
		if b = b[n:]; typ != protowire.BytesType {
			continue
		}
		var err error
		switch num {
		case fHTTPMethod:
			w.method, err = utf8View(v)
		case fHTTPPath:
			w.path, err = utf8View(v)
		case fHTTPHost:
			w.host, err = utf8View(v)
		case fHTTPHeaders:
			err = w.addHeader(v, false)
		case fHTTPHeaderMap:
			err = w.parseAt(v, headerMapPath[:], (*wireRequest).addRawHeader)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *wireRequest) addRawHeader(b []byte) error { return w.addHeader(b, true) }

// next reads the field at the start of b: its number and type, its value
// if it is length-delimited, and its length n in b (negative if it is
// malformed). A one-byte tag and a one-byte length (most of a
// CheckRequest's) are read inline; the results fit in registers.
func next(b []byte) (num protowire.Number, typ protowire.Type, v []byte, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		num, typ, n = protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
	} else {
		num, typ, n = protowire.ConsumeTag(b)
	}
	if n < 0 || num <= 0 {
		return 0, 0, nil, -1
	}
	tag := n
	if typ != protowire.BytesType {
		if n = protowire.ConsumeFieldValue(num, typ, b[tag:]); n < 0 {
			return 0, 0, nil, -1
		}
		return num, typ, nil, tag + n
	}
	var l uint64
	if len(b) > tag && b[tag] < 0x80 {
		l, n = uint64(b[tag]), 1
	} else if l, n = protowire.ConsumeVarint(b[tag:]); n < 0 {
		return 0, 0, nil, -1
	}
	start := tag + n
	if l > uint64(len(b)-start) {
		return 0, 0, nil, -1
	}
	end := start + int(l)
	return num, typ, b[start:end], end
}

// addHeader reads a map entry (key 1, value 2) that readHeaders did not
// take, or a HeaderValue (key 1, value 2, raw_value 3). Header names and
// values are not checked for UTF-8 here: a name is only compared with ASCII
// names, a token is held to base64url by peek, and checking every header
// (a 1.5 KB cookie included) was the largest part of reading a browser's
// request.
func (w *wireRequest) addHeader(b []byte, raw bool) error {
	var k, v, rawV []byte
	for len(b) > 0 {
		num, typ, f, n := next(b)
		if n < 0 {
			return errWire
		}
		if b = b[n:]; typ == protowire.BytesType {
			switch num {
			case fHeaderValueKey:
				k = f
			case fHeaderValueValue:
				v = f
			case fHeaderValueRaw:
				rawV = f
			}
		}
	}
	if !w.bounded(len(k) + len(v) + len(rawV)) {
		return nil
	}
	if !raw {
		w.hdrs = append(w.hdrs, wireHeader{w.spanOf(k), w.spanOf(v)})
		return nil
	}
	if len(v) == 0 {
		v = rawV
	}
	w.raw = append(w.raw, wireHeader{w.spanOf(k), w.spanOf(v)})
	return nil
}

// bounded counts n more bytes of headers and reports whether one more
// header is within the bounds; past them, w is marked oversize.
func (w *wireRequest) bounded(n int) bool {
	w.bytes += n
	if len(w.hdrs)+len(w.raw) >= maxWireHeaders || w.bytes > maxWireHeaderBytes {
		w.oversize = true
		return false
	}
	return true
}

// readHeaders records the headers map entries at the start of b that are
// encoded as every marshaler writes them, and returns how many bytes of b
// they took (0 if the first is not one): each a tag (one byte) and a
// length (one or two), then the key (tag, a length below 128, the name)
// and, unless it is empty, the value (tag, a length of one or two bytes,
// the value), each once and in that order. It reads them as offsets into
// b, with no slice per field: this loop is most of a cached check's read.
// The general reader takes anything else.
func (w *wireRequest) readHeaders(b []byte) int {
	const tag, keyTag, valueTag = fHTTPHeaders<<3 | 2, fHeaderValueKey<<3 | 2, fHeaderValueValue<<3 | 2
	base := cap(w.buf) - cap(b) // b's offset in w.buf
	i := 0
	for i+3 < len(b) && b[i] == tag {
		l, j := int(b[i+1]), i+2
		if l >= 0x80 {
			if b[i+2] >= 0x80 {
				break
			}
			l, j = l&0x7f|int(b[i+2])<<7, i+3
		}
		end := j + l
		if end > len(b) || end < j+2 || b[j] != keyTag || b[j+1] >= 0x80 {
			break
		}
		k, kl := j+2, int(b[j+1])
		v, vl := k+kl, 0
		if v > end {
			break
		}
		if v < end {
			if v+2 > end || b[v] != valueTag {
				break
			}
			vl, v = int(b[v+1]), v+2
			if vl >= 0x80 {
				if v >= end || b[v] >= 0x80 {
					break
				}
				vl, v = vl&0x7f|int(b[v])<<7, v+1
			}
			if v+vl != end {
				break
			}
		}
		if w.bounded(kl + vl) {
			w.hdrs = append(w.hdrs, wireHeader{span{uint32(base + k), uint32(kl)}, span{uint32(base + v), uint32(vl)}})
		}
		i = end
	}
	return i
}

func utf8View(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errWire
	}
	return view(b), nil
}
