package authz

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// TenantPlaceholder stands for the tenant in the issuer template of a
// multi-tenant IdP, as Entra ID's common discovery document names its
// issuer: https://login.microsoftonline.com/{tenantid}/v2.0.
const TenantPlaceholder = "{tenantid}"

// AnyTenant, as the only element of ProviderConfig.Tenants, accepts every
// tenant of the template.
const AnyTenant = "*"

// Errors of issuer templates and tenants.
var (
	ErrTemplateNoTenants = errors.New("an issuer with " + TenantPlaceholder + " needs tenants: the tenant ids it accepts, or \"*\"")
	ErrTenantsNoTemplate = errors.New("tenants go with an issuer template, an issuer with " + TenantPlaceholder + " as a path segment")
)

// tenantTemplate is an issuer with the tenant as one path segment: a token
// whose iss is prefix + tenant + suffix, tenant a plain token, fits it.
type tenantTemplate struct {
	prefix, suffix string
	any            bool
	listed         []string
}

// IsIssuerTemplate reports whether issuer is meant as a template: it holds
// a brace.
func IsIssuerTemplate(issuer string) bool { return strings.ContainsAny(issuer, "{}") }

// CheckIssuerTemplate checks an issuer template: an http(s) URL without
// query or fragment whose path has TenantPlaceholder, once, as a whole
// segment, and no other brace.
func CheckIssuerTemplate(issuer string) error {
	i := strings.Index(issuer, TenantPlaceholder)
	rest := ""
	if i >= 0 {
		rest = issuer[:i] + issuer[i+len(TenantPlaceholder):]
	}
	switch {
	case i < 0 || strings.ContainsAny(rest, "{}"):
		return fmt.Errorf("%q: the only placeholder is %s, once", issuer, TenantPlaceholder)
	case strings.ContainsAny(issuer, "?#"):
		return fmt.Errorf("%q: an issuer template has no query or fragment", issuer)
	}
	u, err := url.Parse(strings.Replace(issuer, TenantPlaceholder, "tenant", 1))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q: an issuer template is an http(s) URL", issuer)
	}
	head, tail := issuer[:i], issuer[i+len(TenantPlaceholder):]
	if !strings.HasSuffix(head, "/") || len(head) <= len(u.Scheme)+len("://")+len(u.Host) || tail != "" && tail[0] != '/' {
		return fmt.Errorf("%q: %s must be a whole segment of the path (https://login.microsoftonline.com/%s/v2.0)", issuer, TenantPlaceholder, TenantPlaceholder)
	}
	return nil
}

// CheckTenant refuses a tenant id that is not a plain token: letters,
// digits, '-', '_' and '.', at most 128 of them, and not "." or "..".
func CheckTenant(id string) error {
	if !validTenant(id) {
		return fmt.Errorf("%q is not a tenant id: 1 to 128 letters, digits, '-', '_' and '.', not . or ..", id)
	}
	return nil
}

func validTenant(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// parseTenants reads a provider's issuer template and tenants; nil if the
// issuer is not a template.
func parseTenants(issuer string, tenants []string) (*tenantTemplate, error) {
	if !IsIssuerTemplate(issuer) {
		if len(tenants) > 0 {
			return nil, fmt.Errorf("tenants: %w", ErrTenantsNoTemplate)
		}
		return nil, nil
	}
	if err := CheckIssuerTemplate(issuer); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if len(tenants) == 0 {
		return nil, fmt.Errorf("tenants: %w", ErrTemplateNoTenants)
	}
	head, tail, _ := strings.Cut(issuer, TenantPlaceholder)
	tt := &tenantTemplate{prefix: head, suffix: tail}
	if slices.Contains(tenants, AnyTenant) {
		if len(tenants) > 1 {
			return nil, fmt.Errorf("tenants: %q accepts every tenant and goes alone", AnyTenant)
		}
		tt.any = true
		return tt, nil
	}
	for j, t := range tenants {
		if err := CheckTenant(t); err != nil {
			return nil, fmt.Errorf("tenants[%d]: %w", j, err)
		}
		if slices.Contains(tenants[:j], t) {
			return nil, fmt.Errorf("tenants[%d]: %q is listed twice", j, t)
		}
	}
	tt.listed = slices.Clone(tenants)
	return tt, nil
}

// issuerOf is the iss of tenant's tokens.
func (tt *tenantTemplate) issuerOf(tenant string) string { return tt.prefix + tenant + tt.suffix }

// tenantOf returns the tenant iss names, if it fits the template.
func (tt *tenantTemplate) tenantOf(iss string) (string, bool) {
	if len(iss) <= len(tt.prefix)+len(tt.suffix) || !strings.HasPrefix(iss, tt.prefix) || !strings.HasSuffix(iss, tt.suffix) {
		return "", false
	}
	t := iss[len(tt.prefix) : len(iss)-len(tt.suffix)]
	if !validTenant(t) {
		return "", false
	}
	return t, true
}

func (tt *tenantTemplate) accepts(tenant string) bool {
	return tt.any || slices.Contains(tt.listed, tenant)
}

// providerOf returns the provider of tokens whose iss is iss: the one
// whose issuer (or listed tenant's issuer) it is exactly, else the first
// template provider of every tenant ("*") that it fits; nil if none.
func (pol *policy) providerOf(iss string) *provider {
	if p := pol.byIssuer[iss]; p != nil {
		return p
	}
	for _, p := range pol.anyTenant {
		if _, ok := p.checks.tenants.tenantOf(iss); ok {
			return p
		}
	}
	return nil
}

// issuerProvider is providerOf, else the provider of any issuer, if any:
// where verify sends a token.
func (pol *policy) issuerProvider(iss string) *provider {
	if p := pol.providerOf(iss); p != nil {
		return p
	}
	return pol.anyIssuer
}

// addIssuers registers the issuers of providers[i], p, a template
// provider: its listed tenants' issuers, or the template for any tenant.
func (pol *policy) addIssuers(i int, p *provider) error {
	tt := p.checks.tenants
	if tt.any {
		for _, q := range pol.anyTenant {
			if q.cfg.Issuer == p.cfg.Issuer {
				return providerError(i, "issuer %q is also provider %q's", p.cfg.Issuer, q.name)
			}
		}
		pol.anyTenant = append(pol.anyTenant, p)
		return nil
	}
	for _, t := range tt.listed {
		iss := tt.issuerOf(t)
		if q := pol.byIssuer[iss]; q != nil {
			return providerError(i, "issuer %q (tenant %q) is also provider %q's", iss, t, q.name)
		}
		pol.byIssuer[iss] = p
	}
	return nil
}
