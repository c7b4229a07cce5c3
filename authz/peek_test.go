package authz

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

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
