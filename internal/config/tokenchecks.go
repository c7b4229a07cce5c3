package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/jwtauthz/jwtauthz/authz"
)

// TenantList is a provider's tenants: a list of tenant ids, or "*" (every
// tenant), written as a list or as that one string.
type TenantList []string

// UnmarshalYAML reads a list of tenant ids, or the string "*".
func (l *TenantList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value == authz.AnyTenant {
		*l = TenantList{authz.AnyTenant}
		return nil
	}
	var ids []string
	if n.Kind != yaml.SequenceNode {
		return errors.New("not a list")
	}
	if err := n.Decode(&ids); err != nil {
		return err
	}
	*l = ids
	return nil
}

// checkTokenChecks checks the provider's token checks: tenants and an
// issuer template, required_typ, max_lifetime and subjects; lines says
// which keys the file holds (subjects: {} is there, and names nothing).
func (p *ProviderConfig) checkTokenChecks(key string, lines map[string]int) []error {
	var errs []error
	hint := func(sub, format string, a ...any) { errs = append(errs, invalidHint(key+"."+sub, format, a...)) }
	if p.Introspection.Set() {
		for _, k := range []struct {
			key string
			set bool
		}{{"tenants", len(p.Tenants) > 0}, {"required_typ", p.RequiredTyp != ""}, {"max_lifetime", p.MaxLifetime != 0}, {"subjects", !p.Subjects.IsZero()}} {
			if k.set {
				hint(k.key, "checks JWTs verified with the provider's keys: an introspection provider's tokens are the endpoint's to judge")
			}
		}
		return errs
	}
	errs = append(errs, p.checkTenants(key)...)
	if p.RequiredTyp != "" {
		if err := authz.CheckRequiredTyp(p.RequiredTyp); err != nil {
			errs = append(errs, invalid(key+".required_typ", "%v", err))
		}
	}
	if p.MaxLifetime < 0 {
		hint("max_lifetime", "must not be negative, got %v; 0 or leaving it out does not check the lifetime", p.MaxLifetime)
	}
	s := p.Subjects
	if _, present := lines[key+".subjects"]; present && s.IsZero() {
		hint("subjects", "names no subject: set exact, prefix or regex (leave subjects out to not check sub)")
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"exact", s.Exact}, {"prefix", s.Prefix}} {
		for j, v := range l.list {
			if v == "" {
				hint(fmt.Sprintf("subjects.%s[%d]", l.key, j), "must not be empty")
			}
		}
	}
	if _, present := lines[key+".subjects.regex"]; present || s.Regex != "" {
		if _, err := authz.CompileSubjectRegex(s.Regex); err != nil {
			errs = append(errs, invalid(key+".subjects.regex", "%q: %v", s.Regex, err))
		}
	}
	return errs
}

// checkTenants checks an issuer template and its tenants: each needs the
// other.
func (p *ProviderConfig) checkTenants(key string) []error {
	var errs []error
	hint := func(sub, format string, a ...any) { errs = append(errs, invalidHint(key+"."+sub, format, a...)) }
	templ := authz.IsIssuerTemplate(p.Issuer)
	switch {
	case templ:
		if err := authz.CheckIssuerTemplate(p.Issuer); err != nil {
			hint("issuer", "%v", err)
		}
		if len(p.Tenants) == 0 {
			hint("tenants", "is required with an issuer template: the tenant ids to accept, e.g. [11111111-2222-3333-4444-555555555555], or \"*\" for every tenant")
		}
	case len(p.Tenants) > 0:
		hint("tenants", "goes with an issuer template: an issuer with %s as a path segment, e.g. https://login.microsoftonline.com/%s/v2.0", authz.TenantPlaceholder, authz.TenantPlaceholder)
		return errs
	}
	for j, t := range p.Tenants {
		switch {
		case t == authz.AnyTenant && len(p.Tenants) > 1:
			hint(fmt.Sprintf("tenants[%d]", j), "%q accepts every tenant: write tenants: \"*\" alone", t)
		case t == authz.AnyTenant:
		case authz.CheckTenant(t) != nil:
			hint(fmt.Sprintf("tenants[%d]", j), "%v", authz.CheckTenant(t))
		case slices.Contains(p.Tenants[:j], t):
			hint(fmt.Sprintf("tenants[%d]", j), "%q is listed twice", t)
		}
	}
	return errs
}

// discoveryURL is where the keys of a provider without jwks_url or
// jwks_file are discovered: {issuer}/.well-known/openid-configuration, and
// for an issuer template the template with the tenant "common" (Entra
// ID's document for every tenant, which names the template as its issuer).
func (p *ProviderConfig) discoveryURL() string {
	iss := p.Issuer
	if authz.IsIssuerTemplate(iss) {
		iss = strings.Replace(iss, authz.TenantPlaceholder, "common", 1)
	}
	return strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
}
