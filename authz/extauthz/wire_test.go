package extauthz

import (
	"bytes"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/authz/internal/authztest"
)

func browserCheckRequest(t testing.TB) *authv3.CheckRequest { return authztest.BrowserCheckRequest(t) }

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
func requestOf(h *authv3.AttributeContext_HttpRequest) authz.Request {
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
	r := authz.Request{Method: h.GetMethod(), Host: h.GetHost(), Path: h.GetPath(), RequestID: hdrs["x-request-id"], Headers: authz.MapHeaders(hdrs)}
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
		if g, e := got.Headers.Get(n), exp.Headers.Get(n); g != e {
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
