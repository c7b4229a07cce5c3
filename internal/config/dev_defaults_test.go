package config

import (
	"io"
	"testing"
)

// Under dev, an address given by flag, variable or file is used as given;
// only the defaults are on loopback. --grpc-reflection defaults to false
// under serve and to true under dev.
func TestDevDefaults(t *testing.T) {
	file := writeFile(t, "http_addr: \"0.0.0.0:7002\"\ngrpc_reflection: false\n")
	tests := []struct {
		name                       string
		cmd                        string
		args                       []string
		env                        []string
		wantGRPC, wantHTTP, wantAd string
		wantReflection             bool
	}{
		{name: "dev defaults", cmd: "dev", wantGRPC: "127.0.0.1:9001", wantHTTP: "127.0.0.1:9002", wantAd: "127.0.0.1:9003", wantReflection: true},
		{name: "dev with addresses given", cmd: "dev", args: []string{"--admin-addr", ":9003", "--grpc-reflection=false"}, env: []string{"JWTAUTHZ_GRPC_ADDR", ":7001"},
			wantGRPC: ":7001", wantHTTP: "127.0.0.1:9002", wantAd: ":9003"},
		{name: "dev with a file", cmd: "dev", args: []string{"--config", file}, wantGRPC: "127.0.0.1:9001", wantHTTP: "0.0.0.0:7002", wantAd: "127.0.0.1:9003"},
		{name: "serve defaults", cmd: "serve", args: []string{"--issuer", "https://issuer.example.com"}, wantGRPC: ":9001", wantHTTP: ":9002", wantAd: ":9003"},
		{name: "serve with reflection", cmd: "serve", args: []string{"--issuer", "https://issuer.example.com"}, env: []string{"JWTAUTHZ_GRPC_REFLECTION", "true"},
			wantGRPC: ":9001", wantHTTP: ":9002", wantAd: ":9003", wantReflection: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load(tt.cmd, tt.args, envOf(tt.env...), io.Discard, DefaultsFor(tt.cmd))
			if err != nil {
				t.Fatal(err)
			}
			if c.GRPCAddr != tt.wantGRPC || c.HTTPAddr != tt.wantHTTP || c.AdminAddr != tt.wantAd || c.GRPCReflection != tt.wantReflection {
				t.Errorf("grpc %q http %q admin %q reflection %v; want %q %q %q %v", c.GRPCAddr, c.HTTPAddr, c.AdminAddr, c.GRPCReflection,
					tt.wantGRPC, tt.wantHTTP, tt.wantAd, tt.wantReflection)
			}
		})
	}
}
