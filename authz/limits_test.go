package authz_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/jwks/issuer"
)

// Every limit of Config is refused when negative, with an error that
// names it; 0 is refused only for MaxTokenSize, and turns the others off.
// A new limit without a case fails the test.
func TestEveryLimitOfConfig(t *testing.T) {
	zeroOff := map[string]bool{
		"ClockSkew": true, "CacheTTL": true, "CacheSize": true, "NegativeCacheSize": true, "NegativeTTL": true,
		"DedupWindow": true, "DedupSize": true, "NetworkWait": true, "MaxTokenSize": false,
	}
	keys := newStaticKeys(issuer.MustSigner("ES256"))
	typ := reflect.TypeFor[authz.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if k := f.Type.Kind(); k != reflect.Int && k != reflect.Int64 {
			continue
		}
		off, ok := zeroOff[f.Name]
		if !ok {
			t.Errorf("Config.%s: no case: say what its zero does", f.Name)
			continue
		}
		delete(zeroOff, f.Name)
		for _, v := range []int64{-1, 0} {
			cfg := authz.DefaultConfig()
			cfg.Providers = []authz.ProviderConfig{{Name: "p", Issuer: "https://p", Keys: keys}}
			reflect.ValueOf(&cfg).Elem().Field(i).SetInt(v)
			wantErr := v < 0 || !off
			for name, err := range map[string]error{"Validate": authz.Validate(cfg), "New": newErr(cfg)} {
				switch {
				case wantErr && (!errors.Is(err, authz.ErrConfig) || !strings.Contains(err.Error(), f.Name)):
					t.Errorf("%s with %s %d: %v, want ErrConfig naming it", name, f.Name, v, err)
				case !wantErr && err != nil:
					t.Errorf("%s with %s %d: %v, want it off", name, f.Name, v, err)
				}
			}
		}
	}
	for name := range zeroOff {
		t.Errorf("case %s names no field of Config", name)
	}
}

func newErr(cfg authz.Config) error {
	e, err := authz.New(cfg)
	if err == nil {
		e.Close()
	}
	return err
}

// A zero size or lifetime turns its cache off: nothing is kept, every
// check decides anew, and the stats show a capacity of 0.
func TestZeroLimitsTurnCachesOff(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*authz.Config)
		bad   bool                        // a token with a bad signature, which the negative cache would keep
		id    string                      // x-request-id
		cache func(authz.Stats) cacheView // the cache that is off
	}{
		{name: "CacheSize", set: func(c *authz.Config) { c.CacheSize = 0 }, cache: tokenStats},
		{name: "CacheTTL", set: func(c *authz.Config) { c.CacheTTL = 0 }, cache: tokenStats},
		{name: "NegativeCacheSize", set: func(c *authz.Config) { c.NegativeCacheSize = 0 }, bad: true, cache: negativeStats},
		{name: "NegativeTTL", set: func(c *authz.Config) { c.NegativeTTL = 0 }, bad: true, cache: negativeStats},
		{name: "DedupSize", set: func(c *authz.Config) { c.DedupSize, c.CacheSize = 0, 0 }, id: "req-1", cache: dedupStats},
		{name: "DedupWindow", set: func(c *authz.Config) { c.DedupWindow, c.CacheSize = 0, 0 }, id: "req-1", cache: dedupStats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, withConfig(func(c *authz.Config, _ *authz.ProviderConfig) { tt.set(c) }))
			tok, want := e.token(nil), codes.OK
			if tt.bad {
				tok, want = tok[:len(tok)-4]+"AAAA", codes.Unauthenticated
			}
			for i := range 3 {
				if resp := e.send(browserRequest(t, "Bearer "+tok, tt.id)); codes.Code(resp.Status.Code) != want {
					t.Fatalf("check %d: %v, want %v", i, resp.Status, want)
				}
			}
			st := e.eng.Stats()
			if c := tt.cache(st); st.Verified != 3 || c.Size != 0 || c.Hits != 0 || c.Capacity != 0 {
				t.Fatalf("verified %d times, cache %+v; want 3 and nothing kept", st.Verified, c)
			}
		})
	}
}

// cacheView is what TestZeroLimitsTurnCachesOff reads of one cache.
type cacheView struct{ Size, Capacity, Hits int }

func tokenStats(s authz.Stats) cacheView {
	return cacheView{s.Tokens.Size, s.Tokens.Capacity, int(s.Tokens.Hits)}
}

func negativeStats(s authz.Stats) cacheView {
	return cacheView{s.Negative.Size, s.Negative.Capacity, int(s.Negative.Hits)}
}

func dedupStats(s authz.Stats) cacheView {
	return cacheView{s.Dedup.Size, s.Dedup.Capacity, int(s.Dedup.Hits)}
}

// stuckKeys is a key source whose refresh never ends: it waits for the
// caller to give up, and reports how long it waited.
type stuckKeys struct {
	*staticKeys
	waited chan time.Duration
}

func (k *stuckKeys) Refresh(ctx context.Context) bool {
	start := time.Now()
	<-ctx.Done()
	k.waited <- time.Since(start)
	return false
}

// A check waits for an unknown kid's refresh no longer than NetworkWait,
// nor than its deadline allows (less a tenth kept back for the answer).
func TestNetworkWaitBoundsTheRefresh(t *testing.T) {
	tests := []struct {
		name     string
		wait     time.Duration
		deadline time.Duration // 0: none
		want     time.Duration
	}{
		{name: "the setting, under a far deadline", wait: 200 * time.Millisecond, deadline: time.Minute, want: 200 * time.Millisecond},
		{name: "the setting, without a deadline", wait: 200 * time.Millisecond, want: 200 * time.Millisecond},
		{name: "the deadline, when nearer", wait: time.Second, deadline: 100 * time.Millisecond, want: 90 * time.Millisecond},
		{name: "zero: no wait", wait: 0, deadline: time.Minute, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				keys := &stuckKeys{staticKeys: newStaticKeys(issuer.MustSigner("ES256")), waited: make(chan time.Duration, 1)}
				cfg := authz.DefaultConfig()
				cfg.Providers = []authz.ProviderConfig{{Name: "p", Issuer: "https://p", Keys: keys}}
				cfg.NetworkWait = tt.wait
				e, err := authz.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				stranger := issuer.MustSigner("ES256") // a kid the keys lack
				tok := sign(t, stranger, jwt.MapClaims{"iss": "https://p", "sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				d := e.Check(ctx, bearerRequest(tok))
				if took := time.Since(start); d.Allow || d.Reason != authz.ReasonUnknownKID || took != tt.want {
					t.Fatalf("%s after %v; want %s after %v", d.Reason, took, authz.ReasonUnknownKID, tt.want)
				}
				if waited := <-keys.waited; waited != tt.want {
					t.Fatalf("the refresh waited %v, want %v", waited, tt.want)
				}
			})
		})
	}
}
