package authz

import "context"

// SharedCache keeps introspection verdicts where the replicas of a fleet
// share them (--shared-cache), so that a token is introspected about once
// per TTL per cluster rather than once per pod. The sharedcache package
// implements it on Redis; the consumer owns the interface.
//
// Implementations key entries by a keyed digest of provider and token
// (never the token itself) and authenticate what they read: a failure of
// any kind (unreachable, slower than ctx allows, an entry that is not
// theirs or not intact) is a miss, never an error the check sees and never
// a verdict the cache did not store.
type SharedCache interface {
	// Get returns the verdict stored for token under provider, and false
	// on a miss. It returns by the time ctx ends.
	Get(ctx context.Context, provider, token string) (SharedVerdict, bool)
	// Put stores v for token under provider until v.Until. It is best
	// effort and returns by the time ctx ends.
	Put(ctx context.Context, provider, token string, v SharedVerdict)
}

// SharedVerdict is what a shared cache keeps of an introspection answer:
// what rules and headers need, never the token.
type SharedVerdict struct {
	Active  bool     `json:"active"`
	Subject string   `json:"sub,omitempty"`
	Issuer  string   `json:"iss,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	// Claims are the claims the configured rules, conditions and headers
	// read, as the introspection response had them (JSON values).
	Claims map[string]any `json:"claims,omitempty"`
	// Until is when the verdict ends, in Unix nanoseconds: the token's exp
	// or the cache TTL, whichever is sooner.
	Until int64 `json:"until"`
}
