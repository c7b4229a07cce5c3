package server

import (
	"strings"
	"testing"
)

// /dev/token answers the token and a newline, as a line of text should
// end: `curl …/dev/token` leaves the shell prompt on a line of its own, and
// $(curl …) drops the newline.
func TestDevTokenEndsWithNewline(t *testing.T) {
	a := startApp(t, true, "dev")
	code, body, hdr := get(t, a.adminURL()+"/dev/token?sub=alice&ttl=10m")
	tok, ok := strings.CutSuffix(body, "\n")
	if code != 200 || !ok || strings.ContainsAny(tok, "\r\n \t") || strings.Count(tok, ".") != 2 {
		t.Fatalf("/dev/token: %d %q; want 200, a JWT and one newline", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
}
