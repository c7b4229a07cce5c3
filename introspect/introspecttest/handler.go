package introspecttest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Fault is a kind of garbage the endpoint answers, with status 200, in place
// of the true answer.
type Fault int

// The faults.
const (
	FaultNone            Fault = iota
	FaultNotJSON               // an HTML page labelled application/json
	FaultContentType           // the true answer labelled text/html
	FaultActiveString          // the true answer with "active": "true" (a string)
	FaultNoActive              // the true answer without "active"
	FaultOversize              // {"active":true,…} padded past 64 KiB
	FaultTruncated             // the first half of the true answer, as the whole body
	FaultCutShort              // a Content-Length longer than the body, then the connection closed
	FaultTrailingData          // {"active":true}{"active":true}
	FaultDuplicateActive       // {"active":false,"active":true}
	FaultArray                 // [{"active":true}]
)

// SetFault makes every later answer of the endpoint f; FaultNone stops it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	status := s.status
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		errorAnswer(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if status != 0 && status != http.StatusOK {
		errorAnswer(w, status, "server_error", "failing on purpose")
		return
	}
	v, err := form(r)
	if err != nil {
		errorAnswer(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if code, desc := s.authenticate(r, v); code != 0 {
		errorAnswer(w, code, map[int]string{400: "invalid_request", 401: "invalid_client"}[code], desc)
		return
	}
	tok := v.Get("token")
	switch hint := v.Get("token_type_hint"); {
	case tok == "":
		errorAnswer(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	case v.Has("token_type_hint") && hint != "access_token" && hint != "refresh_token":
		errorAnswer(w, http.StatusBadRequest, "unsupported_token_type", "unknown token_type_hint")
		return
	case !accepts(r):
		errorAnswer(w, http.StatusNotAcceptable, "invalid_request", "answers are application/json")
		return
	}
	if !s.wait(r, tok) {
		return
	}
	s.answer(w, tok)
}

// authenticate checks the client's credentials, given by exactly one
// method: 0, or the status and description of the refusal.
func (s *Server) authenticate(r *http.Request, v url.Values) (int, string) {
	user, pass, basic := r.BasicAuth()
	post := v.Has("client_id") || v.Has("client_secret")
	switch {
	case basic && post:
		return http.StatusBadRequest, "more than one client authentication method"
	case r.Header.Get("Authorization") != "" && !basic:
		return http.StatusUnauthorized, "unsupported authentication scheme"
	case !basic && !post:
		return http.StatusUnauthorized, "client authentication required"
	case basic && s.method == MethodPost, post && s.method == MethodBasic:
		return http.StatusUnauthorized, "client authentication method not allowed for this client"
	case post:
		user, pass = v.Get("client_id"), v.Get("client_secret")
	default: // RFC 6749 §2.3.1: each form-urlencoded before Basic
		var err1, err2 error
		user, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return http.StatusUnauthorized, "credentials are not form-urlencoded"
		}
	}
	if !equal(user, s.ClientID) || !equal(pass, s.ClientSecret) {
		return http.StatusUnauthorized, "wrong client credentials"
	}
	return 0, ""
}

// wait counts the call for tok and holds it while the test says so; false
// if the request ended while held.
func (s *Server) wait(r *http.Request, tok string) bool {
	s.mu.Lock()
	s.perTok[tok]++
	hold, arrived := s.hold, s.arrived
	s.mu.Unlock()
	if hold == nil {
		return true
	}
	select {
	case arrived <- struct{}{}:
	default:
	}
	select {
	case <-hold:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) answer(w http.ResponseWriter, tok string) {
	s.mu.Lock()
	claims, ok := s.tokens[tok]
	fault := s.fault
	s.mu.Unlock()
	if !ok {
		claims = map[string]any{"active": false}
	}
	body, _ := json.Marshal(claims)
	ct := "application/json"
	switch fault {
	case FaultNotJSON:
		body = []byte("<html><body>Service temporarily unavailable</body></html>")
	case FaultContentType:
		ct = "text/html; charset=utf-8"
	case FaultActiveString, FaultNoActive:
		c := map[string]any{}
		json.Unmarshal(body, &c)
		if delete(c, "active"); fault == FaultActiveString {
			c["active"] = "true"
		}
		body, _ = json.Marshal(c)
	case FaultOversize:
		body = []byte(`{"active":true,"pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	case FaultTruncated:
		body = body[:len(body)/2]
	case FaultCutShort:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+100))
	case FaultTrailingData:
		body = []byte(`{"active":true}{"active":true}`)
	case FaultDuplicateActive:
		body = []byte(`{"active":false,"active":true}`)
	case FaultArray:
		body = []byte(`[{"active":true}]`)
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
