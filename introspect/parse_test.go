package introspect_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jwtauthz/jwtauthz/introspect"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string]any // nil: ErrFailed
	}{
		{name: "active", body: ` {"active":true,"exp":1900000000,"aud":["a","b"],"x":{"y":null}} ` + "\n",
			want: map[string]any{"active": true, "exp": json.Number("1900000000"), "aud": []any{"a", "b"}, "x": map[string]any{"y": nil}}},
		{name: "inactive", body: `{"active":false}`, want: map[string]any{"active": false}},
		{name: "numbers keep their text", body: `{"active":true,"exp":1.9e9,"nbf":-1}`, want: map[string]any{"active": true, "exp": json.Number("1.9e9"), "nbf": json.Number("-1")}},
		{name: "empty", body: ``},
		{name: "null", body: `null`},
		{name: "array", body: `[{"active":true}]`},
		{name: "string", body: `"active"`},
		{name: "active a string", body: `{"active":"true"}`},
		{name: "active a number", body: `{"active":1}`},
		{name: "no active", body: `{"sub":"x"}`},
		{name: "duplicate active", body: `{"active":false,"active":true}`},
		{name: "duplicate by escape", body: `{"active":false,"\u0061ctive":true}`},
		{name: "nested duplicate", body: `{"active":true,"x":{"a":1,"a":2}}`},
		{name: "trailing object", body: `{"active":true}{"active":true}`},
		{name: "trailing garbage", body: `{"active":true}x`},
		{name: "truncated", body: `{"active":true,"sub":"a`},
		{name: "trailing comma", body: `{"active":true,}`},
		{name: "invalid UTF-8", body: "{\"active\":true,\"sub\":\"\xff\"}"},
		{name: "oversize", body: `{"active":true,"p":"` + strings.Repeat("x", introspect.MaxBody) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := introspect.ParseResponse([]byte(tt.body))
			if tt.want == nil {
				if !errors.Is(err, introspect.ErrFailed) || got != nil {
					t.Fatalf("got %v, %v; want ErrFailed", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestActive(t *testing.T) {
	for _, tt := range []struct {
		m    map[string]any
		want bool
	}{
		{m: map[string]any{"active": true}, want: true},
		{m: map[string]any{"active": false}},
		{m: map[string]any{"active": "true"}},
		{m: map[string]any{"active": json.Number("1")}},
		{m: map[string]any{}},
		{m: nil},
	} {
		if got := introspect.Active(tt.m); got != tt.want {
			t.Errorf("Active(%v) = %v", tt.m, got)
		}
	}
}

// FuzzParseIntrospection fuzzes the answer parser with what an
// authorization server (or whoever answers in its name) may send. It never
// panics; what it accepts is one JSON object with a boolean "active", whose
// members encoding/json reads alike; anything else is ErrFailed.
//
//	go test ./introspect -run '^$' -fuzz '^FuzzParseIntrospection$' -fuzztime=20s
func FuzzParseIntrospection(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"sub":"u","exp":1900000000,"scope":"a b","aud":["x"]}`,
		`{"active":false}`, `{"active":"true"}`, `{"active":false,"active":true}`,
		`[{"active":true}]`, `{"active":true}{}`, `{"active":true,"x":{"y":[1,2,{"z":null}]}}`,
		"{\"active\":true,\"s\":\"\\u00e9\xff\"}", ``, `null`, `{"active":true`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := introspect.ParseResponse(body)
		if err != nil {
			if !errors.Is(err, introspect.ErrFailed) || m != nil {
				t.Fatalf("error %v with %v", err, m)
			}
			return
		}
		if _, ok := m["active"].(bool); !ok {
			t.Fatalf("accepted %q without a boolean active", body)
		}
		// encoding/json reads the same object (it takes the last of
		// duplicate names, which the parser refuses).
		var std map[string]any
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&std); err != nil || dec.More() {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(std)) {
			t.Fatalf("%q: parsed %#v, encoding/json %#v", body, m, std)
		}
	})
}

// normalize makes empty arrays nil-free for comparison.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = normalize(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x)
		}
		return out
	}
	return v
}
