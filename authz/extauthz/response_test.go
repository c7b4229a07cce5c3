package extauthz

import (
	"encoding/json"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/jwtauthz/jwtauthz/authz"
)

// The encoded response is the CheckResponse the Decision maps to, byte for
// byte as proto.Marshal writes it.
func TestEncodedResponseIsCheckResponse(t *testing.T) {
	long := strings.Repeat("v", 20_000) // lengths of three varint bytes
	cases := map[string]authz.Decision{
		"subject and issuer":  {Allow: true, Subject: "user_2abc", Issuer: "https://clerk.example.com", Remove: []string{"x-auth-claim-org"}},
		"issuer only":         {Allow: true, Issuer: "https://idp", Remove: []string{authz.HeaderSubject, "x-payload"}},
		"nothing":             {Allow: true},
		"claim headers":       {Allow: true, Subject: "s", Set: []authz.Header{{Name: "x-org", Value: "acme"}, {Name: "x-empty"}, {Name: "x-long", Value: long}}},
		"cookie rewritten":    {Allow: true, Subject: "s", CookieSet: true, Cookie: "theme=dark; " + strings.Repeat("c", 200)},
		"cookie removed":      {Allow: true, Subject: "s", CookieSet: true, Remove: []string{"authorization"}},
		"query removed":       {Allow: true, Subject: "s", RemoveQuery: []string{"access_token"}, Remove: []string{""}},
		"long subject":        {Allow: true, Subject: strings.Repeat("u", 130), Issuer: long},
		"denial":              *fixedDenial(authz.ReasonBadSignature),
		"denial of its own":   {Reason: authz.ReasonInsufficientScope, Challenge: `Bearer error="insufficient_scope", scope="a b"`, Body: `{"error":"forbidden"}`},
		"zero decision":       {},
		"not UTF-8 challenge": {Reason: authz.ReasonBadSignature, Challenge: "Bearer \xff"},
		"metadata":            {Allow: true, Subject: "s", Issuer: "https://idp", Provider: "p", Metadata: &authz.Metadata{Provider: "p"}},
		"metadata claims": {Allow: true, Subject: "s", Issuer: "https://idp", Provider: "p", Metadata: &authz.Metadata{Provider: "p", Claims: []authz.MetadataClaim{
			{Name: "aa", Value: "first"}, {Name: "groups", Value: []any{"g", 1.5, nil, false, map[string]any{"z": "", "a": []any{}}}},
			{Name: "org", Value: "acme"}, {Name: "tier", Value: 3.0}, {Name: "zz", Value: true}, {Name: "odd", Value: "\x00\"\n"},
			{Name: "long", Value: long}, {Name: "bad", Value: "\xff"}, {Name: "int", Value: 3}, {Name: "\xff", Value: "x"},
		}}},
		"metadata without sub": {Allow: true, Issuer: "https://idp", Metadata: &authz.Metadata{Provider: "p", Claims: []authz.MetadataClaim{{Name: "org", Value: "acme"}}}},
		"metadata of public":   {Allow: true, Reason: authz.ReasonPublic, Metadata: &authz.Metadata{Reason: "public"}},
		"metadata of a denial": withMetadata(*fixedDenial(authz.ReasonExpired), &authz.Metadata{Provider: "p", Reason: "expired"}),
		"metadata of its own denial": {Reason: authz.ReasonInsufficientScope, Challenge: `Bearer error="insufficient_scope"`, Body: "{}",
			Subject: "s", Metadata: &authz.Metadata{Provider: "p", Reason: "insufficient_scope"}},
		"metadata without fields": {Allow: true, Metadata: &authz.Metadata{}},
		"metadata of a failed-open allow": {Allow: true, Reason: authz.ReasonExpired, Provider: "p", Remove: []string{"x-auth-subject"},
			Metadata: &authz.Metadata{Provider: "p", Reason: "expired"}},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			e := encodeResponse(&d)
			defer e.data.Free()
			want := CheckResponse(&d)
			if name == "not UTF-8 challenge" {
				want = CheckResponse(fixedDenial(authz.ReasonBadSignature))
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.bytes(); string(got) != string(b) {
				var resp authv3.CheckResponse
				err := proto.Unmarshal(got, &resp)
				t.Fatalf("encoded %x (%v, %v)\nwant    %x (%v)", got, &resp, err, b, want)
			}
		})
	}
}

func withMetadata(d authz.Decision, m *authz.Metadata) authz.Decision {
	d.Metadata = m
	return d
}

// A Metadata is encoded once: on its first use, kept in it, and a denial's
// whole answer is made once per (reason, provider). An allow with metadata
// allocates no more than one without.
func TestMetadataEncodedOnce(t *testing.T) {
	m := &authz.Metadata{Provider: "p", Claims: []authz.MetadataClaim{{Name: "org", Value: "acme"}, {Name: "tier", Value: 2.0}}}
	allow := authz.Decision{Allow: true, Subject: "s", Issuer: "https://idp", Metadata: m}
	encodeResponse(&allow).data.Free()
	em := m.Encoded()
	if em == nil {
		t.Fatal("nothing kept")
	}
	encodeResponse(&allow).data.Free()
	if m.Encoded() != em {
		t.Fatal("encoded again")
	}
	plain := allow
	plain.Metadata = nil
	without := testing.AllocsPerRun(100, func() { encodeResponse(&plain).data.Free() })
	with := testing.AllocsPerRun(100, func() { encodeResponse(&allow).data.Free() })
	if with > without && !raceEnabled { // under -race, sync.Pool drops what it is given at random
		t.Fatalf("%v allocations with metadata, %v without", with, without)
	}
	// The metadata of a reason and provider, first used by an allow that
	// failed open (optional_or_failed), then by the denial.
	m = &authz.Metadata{Provider: "p", Reason: "expired"}
	failedOpen := authz.Decision{Allow: true, Reason: authz.ReasonExpired, Provider: "p", Metadata: m}
	encodeResponse(&failedOpen).data.Free()
	deny := withMetadata(*fixedDenial(authz.ReasonExpired), m)
	first := encodeResponse(&deny)
	if again := encodeResponse(&deny); again != first || first == encodedDenials[authz.ReasonExpired] {
		t.Fatal("the denial with metadata is not made once")
	}
	if n := testing.AllocsPerRun(100, func() { encodeResponse(&deny) }); n != 0 {
		t.Fatalf("a denial with metadata allocates %v", n)
	}
}

// An allow written into a buffer used before is that allow's bytes alone:
// allowPool does not clear what it hands out again. The used buffer is
// filled with 0xff, so that no byte of the allow (zeros included) may be
// left unwritten.
func TestAllowBufferReusedIsWrittenOver(t *testing.T) {
	long := authz.Decision{Allow: true, Subject: "s", CookieSet: true, Cookie: strings.Repeat("c", 900)}
	short := authz.Decision{Allow: true, Subject: "u"}
	for range 3 {
		l := encodeResponse(&long)
		used := l.bytes()
		used = used[:cap(used)]
		for i := range used {
			used[i] = 0xff
		}
		l.data.Free()
		e := encodeResponse(&short)
		b, err := proto.Marshal(CheckResponse(&short))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.bytes(); string(got) != string(b) {
			t.Fatalf("encoded %x, want %x", got, b)
		}
		e.data.Free()
	}
}

// A denial that cannot be marshaled still denies: a zero Decision (whose
// reason has no fixed denial) with a challenge that is not UTF-8.
func TestEncodedResponseUnmarshalableDenial(t *testing.T) {
	d := authz.Decision{Challenge: "Bearer \xff"}
	if e := encodeResponse(&d); e != encodedDenials[authz.ReasonBadRequest] {
		t.Fatalf("encoded %x", e.bytes())
	}
}

// A cookie that is not UTF-8 cannot go into a proto3 string: bad request.
func TestEncodedResponseCookieNotUTF8(t *testing.T) {
	d := authz.Decision{Allow: true, Subject: "s", CookieSet: true, Cookie: "a=\xff"}
	if e := encodeResponse(&d); e != encodedDenials[authz.ReasonBadRequest] {
		t.Fatalf("encoded %x", e.bytes())
	}
}

// BenchmarkResponse: an allow with the identity headers and the headers to
// remove, encoded as the gRPC path does and as gRPC's proto codec would
// (the CheckResponse built, then marshaled).
func BenchmarkResponse(b *testing.B) {
	d := authz.Decision{Allow: true, Subject: "user_2000000000000000000000000000000", Issuer: "https://clerk.example.com",
		Remove: []string{"x-auth-claim-org", "x-auth-payload"}}
	b.Run("encoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeResponse(&d).data.Free()
		}
	})
	for name, m := range map[string]*authz.Metadata{
		"encoded-metadata":        {Provider: "clerk"},
		"encoded-metadata-claims": {Provider: "clerk", Claims: []authz.MetadataClaim{{Name: "org", Value: "org_2abcdefghijkl"}, {Name: "tier", Value: "enterprise"}}},
	} {
		b.Run(name, func(b *testing.B) {
			d := d
			d.Provider, d.Metadata = "clerk", m
			b.ReportAllocs()
			for b.Loop() {
				encodeResponse(&d).data.Free()
			}
		})
	}
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(CheckResponse(&d)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzMetadataClaim: any JSON value as a metadata claim encodes to what
// proto.Marshal makes of CheckResponse, which proto.Unmarshal reads back;
// a value it cannot hold is left out by both.
func FuzzMetadataClaim(f *testing.F) {
	for _, s := range []string{`"a"`, `1.5`, `[1,"x",null,true,{"k":[]}]`, `{"":{"a":"\u0000"}}`, `"\ud800"`, `-0`, `1e308`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		d := authz.Decision{Allow: true, Subject: "s", Issuer: "i", Metadata: &authz.Metadata{Provider: "p", Claims: []authz.MetadataClaim{{Name: "c", Value: v}}}}
		e := encodeResponse(&d)
		defer e.data.Free()
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(CheckResponse(&d))
		if err != nil {
			t.Fatal(err)
		}
		if string(e.bytes()) != string(want) {
			t.Fatalf("%s: encoded %x, want %x", s, e.bytes(), want)
		}
		var resp authv3.CheckResponse
		if err := proto.Unmarshal(e.bytes(), &resp); err != nil {
			t.Fatal(err)
		}
	})
}
