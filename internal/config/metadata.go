package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jwtauthz/jwtauthz/authz"
)

// checkMetadata checks metadata_claims (claim names or dotted paths, as
// claim_headers takes them, none twice and none of the keys every metadata
// has) and that metadata is not false beside them.
func (p *ProviderConfig) checkMetadata(key string) error {
	var errs []error
	for j, c := range p.MetadataClaims {
		k := fmt.Sprintf("%s.metadata_claims[%d]", key, j)
		switch {
		case slices.Contains(authz.MetadataKeys, c):
			errs = append(errs, invalidHint(k, "%q is always sent (%s): name another claim", c, strings.Join(authz.MetadataKeys, ", ")))
		case authz.CheckMetadataClaim(c) != nil:
			errs = append(errs, invalid(k, "%q is not a claim name or dotted path", c))
		case slices.Contains(p.MetadataClaims[:j], c):
			errs = append(errs, invalidHint(k, "%q is named twice", c))
		}
	}
	if p.Metadata != nil && !*p.Metadata && len(p.MetadataClaims) > 0 {
		errs = append(errs, invalidHint(key+".metadata", "is false, so metadata_claims would not be sent: remove one of them"))
	}
	return errors.Join(errs...)
}
