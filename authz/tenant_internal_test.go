package authz

import (
	"strings"
	"testing"
)

// FuzzTenantOf: whatever iss a token names, a template takes it only as
// its prefix, one plain tenant id and its suffix.
func FuzzTenantOf(f *testing.F) {
	for _, s := range []string{"https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0",
		"https://login.microsoftonline.com/{tenantid}/v2.0", "https://login.microsoftonline.com//v2.0",
		"https://login.microsoftonline.com/a/b/v2.0", "https://login.microsoftonline.com/../v2.0"} {
		f.Add(s)
	}
	tt, err := parseTenants("https://login.microsoftonline.com/{tenantid}/v2.0", []string{AnyTenant})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, iss string) {
		tenant, ok := tt.tenantOf(iss)
		if !ok {
			return
		}
		if tt.issuerOf(tenant) != iss || CheckTenant(tenant) != nil || strings.ContainsAny(tenant, "/{}") {
			t.Fatalf("%q taken as tenant %q", iss, tenant)
		}
	})
}
