// Package forwardauth answers HTTP forward-auth queries (nginx
// auth_request, Traefik forwardAuth, Caddy forward_auth, Envoy's
// http_service) with an authz.Engine: it reads the original request from
// the query into an authz.Request, and writes the authz.Decision as the
// answer's status and headers. It decides nothing itself.
//
//	http.Handle("/", forwardauth.New(engine))
package forwardauth

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Handler answers forward-auth queries with an Engine: every request is a
// query about the original request, whose method, host and URI come from
// X-Forwarded-Method/-Host/-Uri or X-Original-Method/-URI, else the request
// itself. Where both name one attribute and disagree, the query is denied
// 400: a client may have sent the one the proxy does not set.
//
// A query that carries a header jwtauthz manages (x-auth-subject,
// x-auth-issuer, a claim_headers or payload_header name; any case, '_' for
// '-') is denied 400 spoofed_header on every route, public ones included,
// before anything else (authz.Engine.CheckForwarded): the proxy passes the
// client's headers on to the app, and copies only those of jwtauthz's
// answer it is told of.
//
// An allow is 200 with the identity headers (X-Auth-Subject, …) and
// X-Envoy-Auth-Headers-To-Remove naming the managed headers not set; a
// denial is 400, 401, 403 or 503 with WWW-Authenticate and a JSON body.
type Handler struct {
	engine *authz.Engine
}

// New returns the forward-auth handler for e.
func New(e *authz.Engine) *Handler { return &Handler{engine: e} }

// ServeHTTP implements http.Handler.
func (f *Handler) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	r := forwardedRequest(hr)
	d := f.engine.CheckForwarded(hr.Context(), &r, hr.Header)
	WriteDecision(w, &d)
}

// forwardedRequest reads the original request from a forward-auth query.
func forwardedRequest(hr *http.Request) authz.Request {
	h := hr.Header
	method, ok1 := origin(h, "X-Forwarded-Method", "X-Original-Method", hr.Method)
	uri, ok2 := origin(h, "X-Forwarded-Uri", "X-Original-Uri", hr.URL.RequestURI())
	host, ok3 := origin(h, "X-Forwarded-Host", "", hr.Host)
	return authz.Request{
		Method:    method,
		Host:      host,
		Path:      uri,
		RequestID: h.Get("X-Request-Id"),
		Headers:   httpHeaders(h),
		Ambiguous: !ok1 || !ok2 || !ok3,
	}
}

// origin reads one attribute of the original request from the header a
// proxy sets (Traefik and Caddy send X-Forwarded-*, nginx setups
// X-Original-*), else own. A proxy overwrites the header it sets, but passes
// on the others a client sent: if both are present and differ, or one is
// given twice, which one the proxy set cannot be told, and ok is false.
func origin(h http.Header, forwarded, original, own string) (v string, ok bool) {
	f, o := h.Values(forwarded), []string(nil)
	if original != "" {
		o = h.Values(original)
	}
	switch {
	case len(f) > 1 || len(o) > 1:
		return "", false
	case len(f) == 1 && len(o) == 1 && f[0] != o[0]:
		return "", false
	case len(f) == 1:
		return f[0], true
	case len(o) == 1:
		return o[0], true
	}
	return own, true
}

// httpHeaders adapts http.Header to authz.Headers: several values come
// joined as authz.HeaderJoiner says, as Envoy joins them, so that two
// Authorization headers are one malformed value rather than a choice.
type httpHeaders http.Header

// Get implements authz.Headers.
func (h httpHeaders) Get(name string) string {
	vs := h[textproto.CanonicalMIMEHeaderKey(name)]
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs, authz.HeaderJoiner(name))
}

// WriteDecision writes d as a forward-auth answer.
func WriteDecision(w http.ResponseWriter, d *authz.Decision) {
	h := w.Header()
	if d.Allow && len(d.RemoveQuery) > 0 {
		// forward_token: false with a query source: a forward-auth answer
		// cannot rewrite the URI, and the token would reach the upstream.
		// jwtauthz serve refuses such a configuration; deny all the same.
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":"server_error","error_description":"forward_token: false cannot remove a query parameter through forward-auth"}`))
		return
	}
	if d.Allow {
		if d.Subject != "" {
			h.Set("X-Auth-Subject", d.Subject)
		}
		if d.Issuer != "" {
			h.Set("X-Auth-Issuer", d.Issuer)
		}
		for _, s := range d.Set {
			h.Set(s.Name, s.Value)
		}
		remove := d.Remove
		switch {
		case d.CookieSet && d.Cookie == "":
			remove = append(slices.Clip(remove), "cookie") // the token was the only cookie
		case d.CookieSet:
			h.Set("Cookie", d.Cookie)
		}
		if len(remove) > 0 {
			h.Set("X-Envoy-Auth-Headers-To-Remove", strings.Join(remove, ","))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set("WWW-Authenticate", d.Challenge)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(d.Body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status())
	w.Write([]byte(d.Body))
}
