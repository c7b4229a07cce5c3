package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtauthz/jwtauthz/authz"
	"github.com/jwtauthz/jwtauthz/internal/config"
)

// maxAuditField is the most of a request's string (host, path, request id)
// an audit line keeps: the client chose it.
const maxAuditField = 512

// auditor writes the audit log: one line per decision, every denial (at
// most rate a second, the rest counted) and one allow in sample. A line
// holds the fields auditDecision names and nothing else: never a token,
// a cookie or a query.
type auditor struct {
	log    *slog.Logger
	closer io.Closer // the file, if the log goes to one
	sample uint64    // log 1 allow in sample; 0: none
	allows atomic.Uint64
	rate   int // denials logged a second at most; 0: no limit
	now    func() time.Time
	// after runs f after d, for the summary of the suppressed denials
	// (time.AfterFunc; tests replace it).
	after func(d time.Duration, f func())

	mu         sync.Mutex
	sec        int64 // the second (Unix) denials are being counted in
	logged     int   // denials logged in sec
	suppressed int   // denials not logged since the last summary
	pending    bool  // a summary is scheduled
}

// newAuditor opens the audit log cfg asks for; nil, nil if none. now is
// the clock of the rate limit.
func newAuditor(cfg *config.Config, now func() time.Time) (*auditor, error) {
	var w io.Writer
	var closer io.Closer
	switch cfg.AuditLog {
	case "":
		return nil, nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(cfg.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit_log: %w", err)
		}
		w, closer = f, f
	}
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, nil)
	} else {
		h = slog.NewJSONHandler(w, nil)
	}
	if now == nil {
		now = time.Now
	}
	return &auditor{
		log: slog.New(h), closer: closer, sample: uint64(max(cfg.AuditSampleAllows, 0)), rate: max(cfg.AuditDenyRate, 0),
		now: now, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}, nil
}

// record logs o if it is a denial within the rate, or an allow the sample
// takes. The allow of a failed token (an optional_or_failed rule) is
// logged as a denial is: a forged or expired token is worth a line,
// whatever the rule let through.
func (au *auditor) record(o *authz.Observation) {
	d := &o.Decision
	if d.Allow && !d.FailedOpen() {
		if au.sample == 0 || au.allows.Add(1)%au.sample != 0 {
			return
		}
	} else if !au.admitDenial() {
		return
	}
	au.write(o)
}

// admitDenial reports whether a denial may be logged under the rate limit,
// counting it if not; the first denial of a new second writes the summary
// of the second before.
func (au *auditor) admitDenial() bool {
	if au.rate == 0 {
		return true
	}
	sec := au.now().Unix()
	au.mu.Lock()
	defer au.mu.Unlock()
	if sec != au.sec {
		au.summarizeLocked()
		au.sec, au.logged = sec, 0
	}
	if au.logged < au.rate {
		au.logged++
		return true
	}
	au.suppressed++
	if !au.pending {
		au.pending = true
		au.after(time.Second, au.summarize) // if no denial comes to write it
	}
	return false
}

// summarize writes how many denials were not logged since the last
// summary, if any were.
func (au *auditor) summarize() {
	au.mu.Lock()
	defer au.mu.Unlock()
	au.summarizeLocked()
}

func (au *auditor) summarizeLocked() {
	au.pending = false
	if au.suppressed == 0 {
		return
	}
	n := au.suppressed
	au.suppressed = 0
	au.log.LogAttrs(context.Background(), slog.LevelWarn, fmt.Sprintf("audit: suppressed %d denials", n), slog.Int("suppressed", n))
}

// write logs one decision. The request's strings point into a buffer the
// next check reuses: the handler formats them before write returns.
func (au *auditor) write(o *authz.Observation) {
	r, d := &o.Request, &o.Decision
	path, _, _ := strings.Cut(r.Path, "?") // the query may hold a token
	decision := "deny"
	if d.Allow {
		decision = "allow"
	}
	au.log.LogAttrs(context.Background(), slog.LevelInfo, "decision",
		slog.String("request_id", clip(r.RequestID)),
		slog.String("method", clip(r.Method)),
		slog.String("host", clip(r.Host)),
		slog.String("path", clip(path)),
		slog.String("provider", d.Provider),
		slog.String("subject", clip(d.Subject)),
		slog.String("decision", decision),
		slog.String("reason", d.Reason.String()),
		slog.Int("rule", d.Rule()),
		slog.Duration("latency", o.Elapsed),
		slog.String("cache", d.Layer.String()),
	)
}

// close writes the last summary and closes the file.
func (au *auditor) close() {
	au.summarize()
	if au.closer != nil {
		au.closer.Close()
	}
}

// clip cuts s to maxAuditField bytes.
func clip(s string) string {
	if len(s) > maxAuditField {
		return s[:maxAuditField] + "…"
	}
	return s
}
