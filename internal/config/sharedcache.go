package config

import (
	"errors"
	"fmt"

	"github.com/jwtauthz/jwtauthz/sharedcache"
)

// checkSharedCache refuses a shared cache without its key file (or the
// reverse), a URL the client cannot use, and a key file that is missing,
// short or readable by others than its owner (SharedCacheKeys).
func (c *Config) checkSharedCache() []error {
	var errs []error
	switch {
	case c.SharedCache == "" && c.SharedCacheKeyFile != "":
		return []error{invalidHint("shared_cache_key_file", "needs shared_cache (the Redis URL)")}
	case c.SharedCache == "":
		return nil
	case c.SharedCacheKeyFile == "":
		errs = append(errs, invalid("shared_cache_key_file", "is required with shared_cache: the cluster secret that keys and signs its entries"))
	default:
		if _, err := c.SharedCacheKeys(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := sharedcache.CheckURL(c.SharedCache); err != nil {
		// Never the URL as given: it may hold a password.
		errs = append(errs, invalid("shared_cache", "%q: %v", sharedcache.Redact(c.SharedCache), err))
	}
	return errs
}

// SharedCacheKeys reads the key file of the shared cache
// (sharedcache.LoadKeys); its error names shared_cache_key_file, never a
// key.
func (c *Config) SharedCacheKeys() ([][]byte, error) {
	keys, err := sharedcache.LoadKeys(c.SharedCacheKeyFile)
	if err != nil {
		hint := "create it with `openssl rand -base64 48 > FILE && chmod 0400 FILE`, as the user jwtauthz runs as"
		if errors.Is(err, sharedcache.ErrKeyFileMode) || errors.Is(err, sharedcache.ErrKeyTooShort) || errors.Is(err, sharedcache.ErrNoKey) {
			hint = "" // the error says what to do
		}
		if hint != "" {
			err = fmt.Errorf("%w; %s", err, hint)
		}
		return nil, &Error{Key: "shared_cache_key_file", Err: err, noExample: true}
	}
	return keys, nil
}

// SummarySharedCache is the shared cache (--shared-cache), null when off:
// its URL without a password, never a key.
type SummarySharedCache struct {
	URL     string `json:"url"`
	KeyFile string `json:"key_file"`
	Keys    int    `json:"keys"` // how many keys the file holds (the first signs)
	Timeout string `json:"timeout"`
}

// sharedCacheSummary is the summary of the shared cache, nil when off.
func (c *Config) sharedCacheSummary() *SummarySharedCache {
	if c.SharedCache == "" {
		return nil
	}
	keys, _ := c.SharedCacheKeys() // Check has read them
	return &SummarySharedCache{URL: sharedcache.Redact(c.SharedCache), KeyFile: c.SharedCacheKeyFile, Keys: len(keys), Timeout: c.SharedCacheTimeout.String()}
}
