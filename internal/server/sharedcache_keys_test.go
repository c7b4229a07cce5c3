package server

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/internal/testutil"
	"github.com/jwtauthz/jwtauthz/introspect/introspecttest"
	"github.com/jwtauthz/jwtauthz/sharedcache"
)

// Two cluster keys of the tests.
const (
	oldKey = "b2xkOiBhIGNsdXN0ZXIgc2VjcmV0IG9mIDQ4IGJ5dGVzIGZvciB0ZXN0cyBvbmx5"
	newKey = "bmV3OiBhIGNsdXN0ZXIgc2VjcmV0IG9mIDQ4IGJ5dGVzIGZvciB0ZXN0cyBvbmx5"
)

// TestSharedCacheKeyRotation: a running jwtauthz reads its shared-cache
// key file again when the kubelet updates the Secret (a symlink swap): what
// it writes from then on is signed with the new first key, and what the old
// key signed is still read. A file it refuses leaves the keys in use.
func TestSharedCacheKeyRotation(t *testing.T) {
	idp := introspecttest.New(t, introspecttest.Options{})
	r := testutil.StartRedis(t)
	secret := newVolume(t, "key", 0o400, oldKey+"\n")
	a, tick := startAppPolled(t, "--config", introspectionConfig(t, idp, false), "--shared-cache", r.URL(),
		"--shared-cache-key-file", secret.path(), "--shared-cache-timeout", "1s")
	client := authv3.NewAuthorizationClient(dial(t, a.grpcAddr()))
	// What a replica with only one of the keys reads of Redis.
	reader := func(key string) *sharedcache.Cache {
		cfg := sharedcache.DefaultConfig()
		cfg.URL, cfg.Keys, cfg.Timeout = r.URL(), [][]byte{[]byte(key)}, time.Second
		c, err := sharedcache.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	oldOnly, newOnly := reader(oldKey), reader(newKey)
	// check allows a new token and returns it once its verdict, written in
	// the background, is in Redis for signedBy.
	check := func(step, sub string, signedBy *sharedcache.Cache) string {
		t.Helper()
		tok := idp.Issue(map[string]any{"iss": idp.Issuer(), "sub": sub, "aud": "api", "exp": time.Now().Add(time.Hour).Unix()})
		if code, _ := checkOpaque(t, client, tok); code != codes.OK {
			t.Fatalf("%s: %v, want OK", step, code)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if _, ok := signedBy.Get(context.Background(), "hydra", tok); ok {
				return tok
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the verdict is not in Redis under the expected key after 10s", step)
			}
		}
	}
	const (
		reloaded = "shared cache keys reloaded"
		rejected = "shared cache key file rejected; the running keys stay"
	)

	alice := check("before the rotation", "alice", oldOnly)
	pollOnce(t, a, tick, func() { secret.update(newKey + "\n" + oldKey + "\n") }, reloaded)
	if !strings.Contains(a.logs.String(), `"keys":2`) {
		t.Errorf("the reload does not say it holds 2 keys:\n%s", a.logs.String())
	}
	check("the new key added first", "bob", newOnly)
	// alice's verdict, signed with the old key, is still read: a second
	// jwtauthz would not ask the IdP about her.
	if _, ok := a.shared.Get(context.Background(), "hydra", alice); !ok {
		t.Error("after the rotation, the old key's entry is not read")
	}

	wantMetric(t, a, "jwtauthz_shared_cache_keys_last_reload_successful 1")
	for _, bad := range []string{"short\n", ""} {
		pollOnce(t, a, tick, func() { secret.update(bad) }, rejected)
		check("after a key file refused", "carol", newOnly)
	}
	wantMetric(t, a, "jwtauthz_shared_cache_keys_last_reload_successful 0")
	pollOnce(t, a, tick, func() { secret.update(newKey + "\n") }, reloaded)
	wantMetric(t, a, "jwtauthz_shared_cache_keys_last_reload_successful 1")
	if _, ok := a.shared.Get(context.Background(), "hydra", alice); ok {
		t.Error("the old key removed: its entry is still read")
	}

	// SIGHUP reads it at once, without a poll.
	before := logCount(a, reloaded)
	secret.update(newKey + "\n" + oldKey + "\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); logCount(a, reloaded) == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no key reload after SIGHUP:\n%s", a.logs.String())
		}
	}
	if _, ok := a.shared.Get(context.Background(), "hydra", alice); !ok {
		t.Error("after SIGHUP, the old key's entry is not read")
	}
	if strings.Contains(a.logs.String(), newKey) || strings.Contains(a.logs.String(), oldKey) {
		t.Error("a key is in the logs")
	}
}
