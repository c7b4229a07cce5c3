package extauthz

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Field numbers of the dynamic metadata (external_auth.proto,
// google/protobuf/struct.proto).
const (
	fRespMetadata = 4 // CheckResponse.dynamic_metadata: a Struct
	fStructFields = 1 // Struct.fields: map<string, Value> entries
	fEntryKey     = 1
	fEntryValue   = 2
	fValueNull    = 1 // Value.null_value
	fValueNumber  = 2 // Value.number_value
	fValueString  = 3 // Value.string_value
	fValueBool    = 4 // Value.bool_value
	fValueStruct  = 5 // Value.struct_value
	fValueList    = 6 // Value.list_value
	fListValues   = 1 // ListValue.values
)

// encodedMeta is a Metadata's encoding, made on its first use and kept in
// it (authz.Metadata.SetEncoded): once per grant, provider, or provider and
// reason, never per check. b holds the Struct's entries of provider, reason
// and claims, sorted by key as proto.Marshal sorts a map when
// deterministic; an allow's iss and sub, which its Decision holds, are
// written at iss and sub.
type encodedMeta struct {
	b        []byte
	iss, sub int
	// denial is the fixed denial of reason with this metadata (a denial's
	// metadata: its Reason names one that denies), for a Decision of that
	// reason that isFixed. (An allow that failed open shares the metadata.)
	denial *encodedResponse
	reason authz.Reason
}

// metaOf returns d's encoded metadata, made once; nil if d has none.
func metaOf(d *authz.Decision) *encodedMeta {
	m := d.Metadata
	if m == nil {
		return nil
	}
	if em, ok := m.Encoded().(*encodedMeta); ok {
		return em
	}
	em := newEncodedMeta(m)
	for _, r := range authz.Reasons() {
		if e := encodedDenials[r]; e != nil && m.Reason == r.String() {
			em.reason = r
			em.denial = encoded(mem.SliceBuffer(insertMeta(e.bytes(), em, fixedDenial(r))))
		}
	}
	m.SetEncoded(em)
	return em
}

// fixedDenialOf returns the fixed denial with metadata em for d, nil if em
// has none for d's reason.
func (em *encodedMeta) fixedDenialOf(d *authz.Decision) *encodedResponse {
	if em.denial != nil && em.reason == d.Reason {
		return em.denial
	}
	return nil
}

func newEncodedMeta(m *authz.Metadata) *encodedMeta {
	type entry struct {
		key string
		val []byte // a Value's fields
	}
	var es []entry
	if m.Provider != "" {
		es = append(es, entry{"provider", appendStringValue(nil, m.Provider)})
	}
	if m.Reason != "" {
		es = append(es, entry{"reason", appendStringValue(nil, m.Reason)})
	}
	for _, c := range m.Claims {
		if v, ok := appendValue(nil, c.Value, 0); ok && utf8.ValidString(c.Name) {
			es = append(es, entry{c.Name, v})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	em := &encodedMeta{}
	for _, e := range es {
		em.b = appendEntry(em.b, e.key, e.val)
		if e.key < "iss" {
			em.iss = len(em.b)
		}
		if e.key < "sub" {
			em.sub = len(em.b)
		}
	}
	return em
}

// metaSize is the size of the Struct of d's metadata em: em's entries and,
// on an allow, iss and sub.
func metaSize(d *authz.Decision, em *encodedMeta) int {
	n := len(em.b)
	if d.Allow {
		n += stringEntrySize("iss", d.Issuer) + stringEntrySize("sub", d.Subject)
	}
	return n
}

// metaFieldSize is the size of CheckResponse.dynamic_metadata for a Struct
// of n bytes; 0 for none.
func metaFieldSize(n int) int {
	if n == 0 {
		return 0
	}
	return sizeBytes(n)
}

// appendMeta appends CheckResponse.dynamic_metadata: d's metadata em, and
// an allow's iss and sub, whose Struct is n bytes (metaSize); nothing if
// that is empty.
func appendMeta(b []byte, em *encodedMeta, d *authz.Decision, n int) []byte {
	if n == 0 {
		return b
	}
	b = append(b, fRespMetadata<<3|byte(protowire.BytesType))
	b = appendLen(b, n)
	if !d.Allow {
		return append(b, em.b...)
	}
	b = append(b, em.b[:em.iss]...)
	b = appendStringEntry(b, "iss", d.Issuer)
	b = append(b, em.b[em.iss:em.sub]...)
	b = appendStringEntry(b, "sub", d.Subject)
	return append(b, em.b[em.sub:]...)
}

// insertMeta returns a copy of the encoded denial b with d's metadata em
// after its first field (status), where proto.Marshal writes it: before
// the oneof denied_response.
func insertMeta(b []byte, em *encodedMeta, d *authz.Decision) []byte {
	_, _, n := protowire.ConsumeField(b)
	if n < 0 {
		n = 0 // not one of ours: the metadata first
	}
	size := metaSize(d, em)
	out := make([]byte, 0, len(b)+metaFieldSize(size))
	out = appendMeta(append(out, b[:n]...), em, d, size)
	return append(out, b[n:]...)
}

// stringEntrySize is the size of a Struct entry of key whose value is the
// string s; 0 if s is empty (not sent).
func stringEntrySize(key, s string) int {
	if s == "" {
		return 0
	}
	return sizeBytes(sizeBytes(len(key)) + sizeBytes(sizeBytes(len(s))))
}

func appendStringEntry(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	v := sizeBytes(len(s))
	b = append(b, fStructFields<<3|byte(protowire.BytesType))
	b = appendLen(b, sizeBytes(len(key))+sizeBytes(v))
	b = appendString(b, fEntryKey, key)
	b = append(b, fEntryValue<<3|byte(protowire.BytesType))
	b = appendLen(b, v)
	return appendString(b, fValueString, s)
}

// appendEntry appends a Struct entry of key whose Value's fields are val.
func appendEntry(b []byte, key string, val []byte) []byte {
	b = append(b, fStructFields<<3|byte(protowire.BytesType))
	b = appendLen(b, sizeBytes(len(key))+sizeBytes(len(val)))
	b = appendString(b, fEntryKey, key)
	b = append(b, fEntryValue<<3|byte(protowire.BytesType))
	b = appendLen(b, len(val))
	return append(b, val...)
}

func appendStringValue(b []byte, s string) []byte { return appendString(b, fValueString, s) }

// appendValue appends the fields of a google.protobuf.Value holding v, a
// value as encoding/json decodes it, and reports whether v could be: not if
// it holds another type, a string that is not UTF-8, or nests deeper than
// authz.MaxMetadataDepth. It is the form structpb.NewValue gives, which
// the message form (CheckResponse) uses.
func appendValue(b []byte, v any, depth int) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, fValueNull<<3|byte(protowire.VarintType), 0), true
	case float64:
		b = append(b, fValueNumber<<3|byte(protowire.Fixed64Type))
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v)), true
	case bool:
		x := byte(0)
		if v {
			x = 1
		}
		return append(b, fValueBool<<3|byte(protowire.VarintType), x), true
	case string:
		if !utf8.ValidString(v) {
			return b, false
		}
		return appendStringValue(b, v), true
	case []any:
		if depth >= authz.MaxMetadataDepth {
			return b, false
		}
		var list []byte
		for _, it := range v {
			val, ok := appendValue(nil, it, depth+1)
			if !ok {
				return b, false
			}
			list = append(list, fListValues<<3|byte(protowire.BytesType))
			list = append(appendLen(list, len(val)), val...)
		}
		b = append(b, fValueList<<3|byte(protowire.BytesType))
		return append(appendLen(b, len(list)), list...), true
	case map[string]any:
		if depth >= authz.MaxMetadataDepth {
			return b, false
		}
		var st []byte
		for _, k := range slices.Sorted(maps.Keys(v)) {
			val, ok := appendValue(nil, v[k], depth+1)
			if !ok || !utf8.ValidString(k) {
				return b, false
			}
			st = appendEntry(st, k, val)
		}
		b = append(b, fValueStruct<<3|byte(protowire.BytesType))
		return append(appendLen(b, len(st)), st...), true
	}
	return b, false
}

// metadataStruct is d's metadata as a message, for CheckResponse; nil if
// none. A claim encodeResponse leaves out (appendValue) is left out.
func metadataStruct(d *authz.Decision) *structpb.Struct {
	m := d.Metadata
	if m == nil {
		return nil
	}
	fs := map[string]*structpb.Value{}
	add := func(k, v string) {
		if v != "" {
			fs[k] = structpb.NewStringValue(v)
		}
	}
	if d.Allow {
		add("sub", d.Subject)
		add("iss", d.Issuer)
	}
	add("provider", m.Provider)
	add("reason", m.Reason)
	for _, c := range m.Claims {
		if _, ok := appendValue(nil, c.Value, 0); !ok || !utf8.ValidString(c.Name) {
			continue
		}
		if v, err := structpb.NewValue(c.Value); err == nil {
			fs[c.Name] = v
		}
	}
	if len(fs) == 0 {
		return nil
	}
	return &structpb.Struct{Fields: fs}
}
