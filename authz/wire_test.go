package authz

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func browserCheckRequest(t testing.TB) *authv3.CheckRequest {
	b, err := os.ReadFile("../testdata/checkrequest-browser.json")
	if err != nil {
		t.Fatal(err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(b, req); err != nil {
		t.Fatal(err)
	}
	return req
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requestOf is the reference reading of a CheckRequest the wire reader is
// held to: what the core needs from proto.Unmarshal's message. Envoy sends
// headers lower-cased in `headers`, or, with encode_raw_headers, in
// `header_map`, repeats joined with "," (cookies with "; ").
func requestOf(h *authv3.AttributeContext_HttpRequest) Request {
	hdrs := h.GetHeaders()
	if len(hdrs) == 0 && len(h.GetHeaderMap().GetHeaders()) > 0 {
		hdrs = map[string]string{}
		for _, hv := range h.GetHeaderMap().GetHeaders() {
			k, v := strings.ToLower(hv.GetKey()), hv.GetValue()
			if v == "" {
				v = string(hv.GetRawValue())
			}
			if old, ok := hdrs[k]; ok && k == "cookie" {
				v = old + "; " + v
			} else if ok {
				v = old + "," + v
			}
			hdrs[k] = v
		}
	}
	r := Request{Method: h.GetMethod(), Host: h.GetHost(), Path: h.GetPath(), RequestID: hdrs["x-request-id"], Headers: MapHeaders(hdrs)}
	if r.Method == "" {
		r.Method = hdrs[":method"]
	}
	if r.Host == "" {
		r.Host = hdrs[":authority"]
	}
	if r.Path == "" {
		r.Path = hdrs[":path"]
	}
	return r
}

// sameAsUnmarshal checks that reading b from the wire gives the core what
// proto.Unmarshal and requestOf give it.
func sameAsUnmarshal(t testing.TB, b []byte) {
	t.Helper()
	want := &authv3.CheckRequest{}
	wantErr := proto.Unmarshal(b, want)
	w := &wireRequest{buf: b}
	err := w.parse()
	if wantErr != nil {
		return // jwtauthz may read what proto refuses (UTF-8 in fields it does not use)
	}
	if err != nil {
		t.Fatalf("wire read failed where proto.Unmarshal did not: %v", err)
	}
	if w.oversize {
		return // denied as request_too_large, whatever the headers
	}
	got, exp := w.request(), requestOf(want.GetAttributes().GetRequest().GetHttp())
	if got.Method != exp.Method || got.Host != exp.Host || got.Path != exp.Path || got.RequestID != exp.RequestID {
		t.Fatalf("request %+v, want %+v", got, exp)
	}
	names := []string{"authorization", "cookie", "x-request-id", ":path", "x-partner-token"}
	for k := range want.GetAttributes().GetRequest().GetHttp().GetHeaders() {
		names = append(names, k)
	}
	for _, h := range want.GetAttributes().GetRequest().GetHttp().GetHeaderMap().GetHeaders() {
		names = append(names, strings.ToLower(h.Key)) // the core asks in lower case
	}
	for _, n := range names {
		if g, e := got.header(n), exp.header(n); g != e {
			t.Fatalf("header %q = %q, want %q", n, g, e)
		}
	}
}

func TestWireReadsWhatUnmarshalDoes(t *testing.T) {
	base := browserCheckRequest(t)
	base.Attributes.Request.Http.Headers["authorization"] = "Bearer a.b.c"
	raw := proto.Clone(base).(*authv3.CheckRequest)
	hm := &corev3.HeaderMap{}
	for k, v := range raw.Attributes.Request.Http.Headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "Authorization", Value: "Bearer second"})
	raw.Attributes.Request.Http.Headers, raw.Attributes.Request.Http.HeaderMap = nil, hm
	other := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "POST", Headers: map[string]string{"authorization": "Bearer later", "x-extra": "1"},
	}}}}
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "Envoy's browser request", b: marshal(t, base)},
		{name: "header_map (encode_raw_headers)", b: marshal(t, raw)},
		{name: "two messages concatenated: merged, last value wins", b: append(marshal(t, base), marshal(t, other)...)},
		{name: "pseudo-headers only", b: marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Headers: map[string]string{":method": "PUT", ":authority": "h", ":path": "/p?q"}}}}})},
		{name: "empty", b: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { sameAsUnmarshal(t, tt.b) })
	}
}

func TestWireRefusesMalformed(t *testing.T) {
	good := marshal(t, browserCheckRequest(t))
	for name, b := range map[string][]byte{
		"truncated":           good[:len(good)-3],
		"length past the end": {0x0a, 0xff},
		"field number 0":      {0x00},
		"method not UTF-8":    bytes.Replace(marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "XYZ"}}}}), []byte("XYZ"), []byte("\xff\xfe\xfd"), 1),
	} {
		if err := (&wireRequest{buf: b}).parse(); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

func TestWireHeaderLimit(t *testing.T) {
	h := map[string]string{}
	for i := range maxWireHeaders + 1 {
		h[string(rune('a'+i%26))+string(rune(i))] = "v"
	}
	b := marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Headers: h}}}})
	w := &wireRequest{buf: b}
	if err := w.parse(); err != nil || !w.oversize {
		t.Fatalf("err %v, oversize %v: want a request marked oversize", err, w.oversize)
	}
	if r := w.request(); !r.Oversize {
		t.Fatal("the core is not told")
	}
}

func FuzzWireRequest(f *testing.F) {
	f.Add(marshal(f, browserCheckRequest(f)))
	f.Add(marshal(f, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "authorization", Value: "Bearer x"}, {Key: "Authorization", RawValue: []byte("y")}}}}}}}))
	f.Add([]byte{0x0a, 0x02, 0x22, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) { sameAsUnmarshal(t, b) })
}

func BenchmarkWireRead(b *testing.B) {
	buf := marshal(b, browserCheckRequest(b))
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		w := &wireRequest{}
		for b.Loop() {
			*w = wireRequest{buf: append(w.buf[:0], buf...), hdrs: w.hdrs[:0], raw: w.raw[:0]}
			if err := w.parse(); err != nil || w.oversize || len(w.hdrs) == 0 {
				b.Fatal(err, w.oversize)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(buf, &authv3.CheckRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A request with more headers than the codec reads is denied, not decided
// on the headers it did read.
func TestOversizeRequestIsDenied(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Providers = []ProviderConfig{{Name: "p", Issuer: "https://p", Keys: nopKeys{}}}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Check(t.Context(), &Request{Oversize: true, Headers: MapHeaders{}})
	if d.Allow || d.Reason != ReasonRequestTooLarge || d.Status() != 431 {
		t.Fatalf("%+v", d)
	}
}

type nopKeys struct{}

func (nopKeys) Key(string) (crypto.PublicKey, string, bool) { return nil, "", false }
func (nopKeys) Ready() bool                                 { return false }
func (nopKeys) Refresh(context.Context) bool                { return false }
func (nopKeys) EachKey(func(crypto.PublicKey, string) bool) {}
func (nopKeys) HasKey(crypto.PublicKey) bool                { return false }

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		in   string
		want error // nil: accepted
	}{
		{`{"a":1,"b":"x:{y}","c":{"a":1,"a":2},"d":[{"e":":"}]}`, nil},
		{` {"a":"\"}"} `, nil},
		{"{ \"a\" :\"\\\\\" ,\"b\":[1,\"]\",{\"c\":\"}\"}],\"d\":-1.5e+3\n}", nil},
		{`{"a":1,"b":{"a":2},"\u0062":3}`, errDuplicate},
		{`{"a":1,"a":2}`, errDuplicate},
		{`{"a":1,"\u0061":2}`, errDuplicate},
		{`{}`, nil},
		{`null`, errNotObject},
		{`[1]`, errNotObject},
		{`{"a":1} x`, nil}, // refused below by encoding/json
		{"{\"a\":\"\xff\"}", errUTF8},
	}
	for _, tt := range tests {
		_, err := decodeObject([]byte(tt.in))
		switch {
		case tt.in == `{"a":1} x`:
			if err == nil {
				t.Errorf("%s: trailing data accepted", tt.in)
			}
		case err != tt.want:
			t.Errorf("%s: err %v, want %v", tt.in, err, tt.want)
		}
	}
}

func BenchmarkPeek(b *testing.B) {
	tok := "eyJhbGciOiJFUzI1NiIsImtpZCI6Ik9kMnBmUHNJd3RWVE5oVFQiLCJ0eXAiOiJKV1QifQ.eyJleHAiOjE3OTYxMTQzNzYsImlhdCI6MTc5NjExMDc3NiwiaXNzIjoiaHR0cDovLzEyNy4wLjAuMTo5MDAzL2RldiIsInN1YiI6ImRldi11c2VyIn0.08pXodU_-gYVWCem5WI80GWsCD0ujo3U0X9xO5OqZwi5v-fsTbEmiZ05TJEw8sr7592Lz_SMFY9teqs5Xl1mJA"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := peek(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeObject holds decodeObject to what encoding/json reads: the same
// members with the same values, accepted exactly when json.Unmarshal into a
// map accepts the object and no name comes twice.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x:{y}","c":{"a":1,"a":2},"d":[{"e":":"}]}`, ` {"a":"\"}"} `, `{"a":1,"\u0061":2}`,
		`{}`, `{"exp":1e3,"n":null,"t":true,"s":"\u00e9\\"}`, `{"a":1} x`, `{"a" : [ 1 , 2 ] , "b" : { } }`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeObject(b)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		if err == nil {
			if werr != nil || !utf8.Valid(b) {
				t.Fatalf("%q accepted; encoding/json: %v", b, werr)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d members, encoding/json %d", b, len(got), len(want))
			}
			for k, v := range want {
				if string(got[k]) != string(v) {
					t.Fatalf("%q: member %q = %s, encoding/json %s", b, k, got[k], v)
				}
			}
			return
		}
		// Refused: so must encoding/json, unless the reason is one it does
		// not check (a repeated name, invalid UTF-8) or the text is not an
		// object (encoding/json takes null into a map).
		if werr == nil && err != errDuplicate && err != errUTF8 && err != errNotObject {
			t.Fatalf("%q refused (%v); encoding/json accepts it", b, err)
		}
		if err == errDuplicate && (werr != nil || members(b) == len(want)) {
			t.Fatalf("%q refused as a duplicate, but no name repeats", b)
		}
	})
}

// members counts the members of the JSON object obj, which encoding/json
// has accepted: every ':' outside strings at the object's own depth.
func members(obj []byte) int {
	n, depth, inStr, esc := 0, 0, false, false
	for _, c := range obj {
		switch {
		case esc:
			esc = false
		case inStr:
			esc, inStr = c == '\\', c != '"'
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			n++
		}
	}
	return n
}
