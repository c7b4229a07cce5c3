package sharedcache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// CheckURL reports whether s is a URL the cache can connect to: redis://
// or rediss:// (TLS) host[:port][/db], or unix:///path[?db=N], with an
// optional user and password. Options in the query that set timeouts,
// retries or the pool are refused: the cache sets them (Config.Timeout).
func CheckURL(s string) error {
	opts, err := redisOptions(s)
	if err == nil && opts.Addr == "" {
		err = errors.New("no address")
	}
	return err
}

func redisOptions(s string) (*redis.Options, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, ErrURL // url's error quotes the URL, and so its password
	}
	for k := range u.Query() {
		for _, ours := range []string{"timeout", "retr", "pool", "idle", "conn", "context"} {
			if strings.Contains(k, ours) {
				return nil, fmt.Errorf("%w: %s (the cache sets timeouts, retries and the pool itself)", ErrURLOption, k)
			}
		}
	}
	opts, err := redis.ParseURL(s) // its errors name a part, never the password
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	return opts, nil
}

// Redact is the URL s without its password or the values of its query,
// for logs and summaries; "" if s is not a URL.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	q := u.Query()
	for k := range q {
		q[k] = []string{"xxxxx"}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// limit makes every wait of the client end within timeout, and keeps it
// from doing anything on connect but what it needs.
func limit(o *redis.Options, timeout time.Duration) {
	o.ContextTimeoutEnabled = true // the operation's deadline bounds reads and writes
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.MaxRetries = -1        // a retry would not fit in the timeout
	o.DialerRetries = 1      // nor would a second dial
	o.DisableIdentity = true // no CLIENT SETINFO on connect
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// quiet silences go-redis's own logger (process-wide; it would print a
// line on stderr, outside --log-format, for each failed dial): the breaker's
// log lines and the metrics say what happens.
var quiet sync.Once

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}
