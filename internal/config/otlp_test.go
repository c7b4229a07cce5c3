package config

import (
	"strings"
	"testing"
)

// TestOTLPSettingsAreChecked: an endpoint that is not an http(s) URL, or an
// unknown protocol, is refused naming the setting, never exported to.
func TestOTLPSettingsAreChecked(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string // "" for no error
	}{
		{name: "grpc endpoint", args: []string{"--otlp-endpoint", "http://collector:4317"}},
		{name: "https endpoint over http", args: []string{"--otlp-endpoint", "https://collector:4318", "--otlp-protocol", "http/protobuf"}},
		{name: "no scheme", args: []string{"--otlp-endpoint", "collector:4317"}, want: "--otlp-endpoint:"},
		{name: "no host", args: []string{"--otlp-endpoint", "http://"}, want: "--otlp-endpoint:"},
		{name: "grpc scheme", env: []string{"JWTAUTHZ_OTLP_ENDPOINT", "grpc://collector:4317"}, want: "JWTAUTHZ_OTLP_ENDPOINT:"},
		{name: "unknown protocol", args: []string{"--otlp-protocol", "http/json"}, want: "--otlp-protocol:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, append([]string{"--issuer", "https://a.example.com"}, tt.args...), envOf(tt.env...))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one starting %q", err, tt.want)
			}
		})
	}
}
