package server

import (
	"strings"
	"testing"
)

func TestEmptyAddressDisablesTheListener(t *testing.T) {
	a := startApp(t, false, "dev", "--http-addr", "", "--grpc-addr", "")
	if a.httpLis != nil || a.grpcLis != nil || a.adminLis == nil {
		t.Fatal("an empty address should disable its listener")
	}
	a.waitReady(t)
}

func TestClerkSecretNeverShown(t *testing.T) {
	// api.clerk.com cannot be reached from here: the fetch fails, is logged,
	// and /cache/health reports it; neither may show the secret.
	a := startAppEnv(t, false, envOf("CLERK_SECRET_KEY", "sk_test_s3cret"), "--jwks-timeout", "100ms")
	code, body, _ := get(t, a.adminURL()+"/cache/health")
	if code != 200 || strings.Contains(body, "s3cret") || strings.Contains(a.logs.String(), "s3cret") {
		t.Fatalf("the Clerk secret shows in /cache/health or the logs")
	}
}
