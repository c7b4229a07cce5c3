package envoy

import (
	"strings"
	"testing"
)

// TestYAMLToJSON pins how Parse reads YAML: as sigs.k8s.io/yaml's
// YAMLToJSONStrict did (YAML 1.1 scalars, keys as their values' text, a
// duplicate key an error), and stricter where that one silently dropped a
// key that another one also named.
func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want, wantErr string
	}{
		{name: "YAML 1.1 bools", yaml: "a: yes\nb: On\nc: n\nd: OFF\ne: true\nf: y\n", want: `{"a":true,"b":true,"c":false,"d":false,"e":true,"f":true}`},
		{name: "quoted or block bool words are strings", yaml: "a: 'yes'\nb: \"on\"\nc: |\n  no\n", want: `{"a":"yes","b":"on","c":"no\n"}`},
		{name: "tagged", yaml: "a: !!bool yes\nb: !!str yes\nc: !!str 1\n", want: `{"a":true,"b":"yes","c":"1"}`},
		{name: "numbers", yaml: "a: 0x10\nb: 0o17\nc: 017\nd: 1_000\ne: 1.5e3\nf: -0b101\ng: 18446744073709551615\nh: 0.1\n", want: `{"a":16,"b":15,"c":15,"d":1000,"e":1500,"f":-5,"g":18446744073709551615,"h":0.1}`},
		{name: "quoted numbers are strings", yaml: "a: '1'\nb: \"0x10\"\n", want: `{"a":"1","b":"0x10"}`},
		{name: "null", yaml: "a: ~\nb: null\nc:\n", want: `{"a":null,"b":null,"c":null}`},
		{name: "timestamps stay as written", yaml: "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\n", want: `{"a":"2001-12-14","b":"2001-12-14t21:59:43.10-05:00"}`},
		{name: "keys as their values' text", yaml: "1: a\n1.5: b\ntrue: c\nyes_no: d\n", want: `{"1":"a","1.5":"b","true":"c","yes_no":"d"}`},
		{name: "a YAML 1.1 bool key", yaml: "on: a\n", want: `{"true":"a"}`},
		{name: "merge and anchors", yaml: "b: &b {p: 1, q: 2}\nc:\n  <<: *b\n  r: 3\n", want: `{"b":{"p":1,"q":2},"c":{"p":1,"q":2,"r":3}}`},
		{name: "only the first document", yaml: "a: 1\n---\nb: 2\n", want: `{"a":1}`},
		{name: "empty", yaml: "", want: `null`},
		{name: "HTML characters", yaml: "a: <x&y>\n", want: `{"a":"\u003cx\u0026y\u003e"}`},
		{name: "duplicate key", yaml: "a: 1\na: 2\n", wantErr: `already defined`},
		{name: "duplicate key, two spellings of one number", yaml: "1: a\n01: b\n", wantErr: `"1" already defined`},
		{name: "duplicate key, two spellings of one bool", yaml: "yes: a\non: b\n", wantErr: `already defined`},
		{name: "a number key and a string key with one text", yaml: "1: a\n'1': b\n", wantErr: `already defined`},
		{name: "null key", yaml: "~: a\n", wantErr: `mapping key`},
		{name: "sequence key", yaml: "? [a]\n: b\n", wantErr: `invalid map key`},
		{name: "infinity has no JSON", yaml: "a: .inf\n", wantErr: `unsupported value`},
		{name: "bad YAML", yaml: "a: [1\n", wantErr: `yaml:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(tc.yaml))
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %s, %v; want an error with %q", got, err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v; want %s", err, tc.want)
			case tc.wantErr == "" && string(got) != tc.want:
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestParseRefusesKeysThatNameOneJSONKey: two spellings of one key are a
// duplicate key, refused like any other, not one of them silently dropped.
func TestParseRefusesKeysThatNameOneJSONKey(t *testing.T) {
	for _, tc := range []struct{ name, metadata string }{
		{name: "number and string", metadata: "{1: a, '1': b}"},
		{name: "two spellings of one number", metadata: "{1: a, 0x1: b}"},
		{name: "two spellings of one bool", metadata: "{yes: a, true: b}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := Parse([]byte("node: {id: node1, metadata: " + tc.metadata + "}\n"))
			if err == nil || !strings.Contains(err.Error(), "already") {
				t.Fatalf("Parse: %v, metadata %v; want an error about a key already defined", err, bs.GetNode().GetMetadata())
			}
		})
	}
	if _, err := Parse([]byte("node: {id: node1, metadata: {1: a, '2': b}}\n")); err != nil {
		t.Fatalf("distinct keys: %v", err)
	}
}
