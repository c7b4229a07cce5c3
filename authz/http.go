package authz

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// ForwardAuth answers HTTP forward-auth queries (nginx auth_request,
// Traefik forwardAuth, Caddy forward_auth, Envoy's http_service) with the
// same engine: every request is a query about the original request, whose
// method, host and URI come from X-Forwarded-Method/-Host/-Uri, else
// X-Original-Method/-URI, else the request itself.
//
// An allow is 200 with the identity headers (X-Auth-Subject, …) and
// X-Envoy-Auth-Headers-To-Remove naming the managed headers not set; a
// denial is 401, 403 or 503 with WWW-Authenticate and a JSON body.
type ForwardAuth struct {
	engine *Engine
}

// NewForwardAuth returns the forward-auth handler for e.
func NewForwardAuth(e *Engine) *ForwardAuth { return &ForwardAuth{engine: e} }

// ServeHTTP implements http.Handler.
func (f *ForwardAuth) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	r := forwardedRequest(hr)
	d := f.engine.Check(hr.Context(), &r)
	WriteDecision(w, &d)
}

func forwardedRequest(hr *http.Request) Request {
	h := hr.Header
	return Request{
		Method:    first(h.Get("X-Forwarded-Method"), h.Get("X-Original-Method"), hr.Method),
		Host:      first(h.Get("X-Forwarded-Host"), hr.Host),
		Path:      first(h.Get("X-Forwarded-Uri"), h.Get("X-Original-Uri"), hr.URL.RequestURI()),
		RequestID: h.Get("X-Request-Id"),
		Headers:   httpHeaders(h),
	}
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// httpHeaders adapts http.Header to Headers: several values come joined
// with ",", as Envoy joins them, so that two Authorization headers are one
// malformed value rather than a choice.
type httpHeaders http.Header

func (h httpHeaders) Get(name string) string {
	vs := h[textproto.CanonicalMIMEHeaderKey(name)]
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	sep := ","
	if strings.EqualFold(name, "cookie") {
		sep = "; "
	}
	return strings.Join(vs, sep)
}

// WriteDecision writes d as a forward-auth answer.
func WriteDecision(w http.ResponseWriter, d *Decision) {
	h := w.Header()
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
		if d.CookieSet {
			h.Set("Cookie", d.Cookie)
		}
		if len(d.Remove) > 0 {
			h.Set("X-Envoy-Auth-Headers-To-Remove", strings.Join(d.Remove, ","))
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
