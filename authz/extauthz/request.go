package extauthz

import (
	"strings"

	"github.com/jwtauthz/jwtauthz/authz"
)

// Get implements authz.Headers: the last value of a map key, as proto.Unmarshal
// keeps it; with header_map (and no headers map), every value of the name
// joined as authz.HeaderJoiner says, names compared without case.
func (w *wireRequest) Get(name string) string {
	if len(w.hdrs) > 0 || len(w.raw) == 0 {
		for i := len(w.hdrs) - 1; i >= 0; i-- {
			if h := w.hdrs[i]; int(h.k.n) == len(name) && w.str(h.k) == name {
				return w.str(h.v)
			}
		}
		return ""
	}
	var b strings.Builder // only a name given more than once builds
	first, n := "", 0
	for _, h := range w.raw {
		if !strings.EqualFold(w.str(h.k), name) {
			continue
		}
		switch n++; n {
		case 1:
			first = w.str(h.v)
			continue
		case 2:
			b.WriteString(first)
		}
		b.WriteString(authz.HeaderJoiner(name))
		b.WriteString(w.str(h.v))
	}
	if n < 2 {
		return first
	}
	return b.String()
}

// request is the core's view of w.
func (w *wireRequest) request() authz.Request {
	r := authz.Request{Method: w.method, Host: w.host, Path: w.path, Headers: w, Oversize: w.oversize}
	if r.Method == "" {
		r.Method = w.Get(":method")
	}
	if r.Host == "" {
		r.Host = w.Get(":authority")
	}
	if r.Path == "" {
		r.Path = w.Get(":path")
	}
	r.RequestID = w.Get("x-request-id")
	return r
}
