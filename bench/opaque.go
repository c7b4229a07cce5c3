package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// srvOpaque is the server of scenario d: the JWT provider of the others and
// an introspection provider, "hydra", with a token cache as large as the
// opaque pool.
const srvOpaque = "jwtauthz-opaque"

// opaqueIdP is an RFC 7662 introspection endpoint on loopback: it answers
// the pool's tokens active (an hour past the run's start) and any other
// inactive, to a client authenticated with HTTP Basic, and counts its
// calls: with the cache warm, scenario d should make none.
type opaqueIdP struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	tokens map[string]int
	calls  atomic.Int64
	exp    int64
}

const opaqueClient = "jwtauthz-bench"

func newOpaqueIdP() *opaqueIdP {
	o := &opaqueIdP{secret: randomToken("secret_"), tokens: map[string]int{}, exp: time.Now().Add(tokenTTL).Unix()}
	o.Server = httptest.NewServer(http.HandlerFunc(o.introspect))
	return o
}

func (o *opaqueIdP) introspect(w http.ResponseWriter, r *http.Request) {
	o.calls.Add(1)
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok || id != opaqueClient || secret != o.secret {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	o.mu.Lock()
	i, known := o.tokens[r.PostFormValue("token")]
	o.mu.Unlock()
	answer := map[string]any{"active": false}
	if known {
		answer = map[string]any{"active": true, "iss": o.URL, "sub": fmt.Sprintf("user_opaque%08d", i), "client_id": "app",
			"scope": "openid profile", "token_type": "access_token", "exp": o.exp, "iat": o.exp - int64(tokenTTL/time.Second)}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

// issue makes n opaque tokens in the shape of Ory Hydra's access tokens.
func (o *opaqueIdP) issue(n int) []string {
	toks := make([]string, n)
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range toks {
		toks[i] = randomToken("ory_at_") + "." + randomToken("")
		o.tokens[toks[i]] = i
	}
	return toks
}

func randomToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// config writes the config file of srvOpaque's provider, and its client
// secret, into dir.
func (o *opaqueIdP) config(dir string) (string, error) {
	secret := filepath.Join(dir, "hydra-client-secret")
	if err := os.WriteFile(secret, []byte(o.secret), 0o600); err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "opaque.yaml")
	body := fmt.Sprintf("providers:\n  - name: hydra\n    issuer: %s\n    introspection:\n      url: %s/introspect\n      client_id: %s\n      client_secret_file: %s\n      cache_ttl: %s\n",
		o.URL, o.URL, opaqueClient, secret, cacheTTL)
	return cfg, os.WriteFile(cfg, []byte(body), 0o600)
}

// callsPerToken is the endpoint's calls per pool token so far.
func (o *opaqueIdP) callsPerToken() float64 {
	o.mu.Lock()
	n := len(o.tokens)
	o.mu.Unlock()
	if n == 0 {
		return 0
	}
	return float64(o.calls.Load()) / float64(n)
}
