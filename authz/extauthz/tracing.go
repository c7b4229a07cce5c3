package extauthz

import (
	"context"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtauthz/jwtauthz/authz"
)

// TracerName is the instrumentation scope of jwtauthz's spans.
const TracerName = "github.com/jwtauthz/jwtauthz"

// Names of the spans and attributes jwtauthz exports.
const (
	SpanCheck      = "Check"                // one ext_authz check, a server span
	SpanVerify     = "jwt.verify"           // a token's signature and claims checked
	SpanKeyWait    = "jwks.wait"            // a check waiting for a key set refresh
	SpanIntrospect = "token.introspect"     // an opaque token's introspection endpoint asked
	AttrDecision   = "jwtauthz.decision"    // allow or deny
	AttrReason     = "jwtauthz.reason"      // the Decision's Reason
	AttrProvider   = "jwtauthz.provider"    // the provider that allowed, or the denial's
	AttrLayer      = "jwtauthz.cache_layer" // what answered: token_cache, negative_cache, dedup, verified, none
	AttrRule       = "jwtauthz.rule"        // the index of the rule that decided, -1 none
)

// Tracing makes the spans of checks: a Check span per check, continuing
// the trace of the CheckRequest's traceparent/tracestate or B3 headers
// (single b3 or X-B3-*; traceparent wins when both come), and, as the engine's authz.Tracer, child spans for
// a verification and for a wait on a key set refresh. Whether a span is
// recorded and exported is the TracerProvider's sampler's call (a
// parent-based one honours the caller's sampled flag).
type Tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

var _ authz.Tracer = (*Tracing)(nil)

// NewTracing returns the tracing of checks through tp. Give it to the
// engine (authz.Config.Tracer) and to NewServer (WithTracing).
func NewTracing(tp trace.TracerProvider) *Tracing {
	return &Tracing{
		tracer: tp.Tracer(TracerName),
		// Extracted in order, each over the last: traceparent wins when
		// both are sent (Envoy may send both).
		prop: propagation.NewCompositeTextMapPropagator(b3.New(), propagation.TraceContext{}),
	}
}

// StartVerify implements authz.Tracer: a jwt.verify span.
func (t *Tracing) StartVerify(ctx context.Context, provider string) (context.Context, func(authz.Reason)) {
	return t.startStep(ctx, SpanVerify, provider)
}

// StartIntrospect implements authz.Tracer: a token.introspect span.
func (t *Tracing) StartIntrospect(ctx context.Context, provider string) (context.Context, func(authz.Reason)) {
	return t.startStep(ctx, SpanIntrospect, provider)
}

// startStep starts a span named name whose end records the outcome's reason.
func (t *Tracing) startStep(ctx context.Context, name, provider string) (context.Context, func(authz.Reason)) {
	ctx, sp := t.tracer.Start(ctx, name, trace.WithAttributes(attribute.String(AttrProvider, provider)))
	return ctx, func(r authz.Reason) {
		if sp.IsRecording() {
			sp.SetAttributes(attribute.String(AttrReason, r.String()))
			if r != authz.ReasonOK {
				sp.SetStatus(codes.Error, r.String())
			}
		}
		sp.End()
	}
}

// StartKeyWait implements authz.Tracer: a jwks.wait span. The fetch it
// waits for runs apart from the check (other checks may join it), so it is
// not a child of this span.
func (t *Tracing) StartKeyWait(ctx context.Context, provider string) (context.Context, func()) {
	ctx, sp := t.tracer.Start(ctx, SpanKeyWait, trace.WithAttributes(attribute.String(AttrProvider, provider)))
	return ctx, func() { sp.End() }
}

// startCheck starts the Check span of a request whose headers are h, under
// the trace its trace headers carry.
func (t *Tracing) startCheck(ctx context.Context, h authz.Headers) (context.Context, trace.Span) {
	ctx = t.prop.Extract(ctx, headerCarrier{h})
	return t.tracer.Start(ctx, SpanCheck, trace.WithSpanKind(trace.SpanKindServer))
}

// endCheck sets d's attributes on sp and ends it.
func endCheck(sp trace.Span, d *authz.Decision) {
	if sp.IsRecording() {
		decision := "deny"
		if d.Allow {
			decision = "allow"
		}
		sp.SetAttributes(
			attribute.String(AttrDecision, decision),
			attribute.String(AttrReason, d.Reason.String()),
			attribute.String(AttrProvider, d.Provider),
			attribute.String(AttrLayer, d.Layer.String()),
			attribute.Int(AttrRule, d.Rule()),
		)
	}
	sp.End()
}

// headerCarrier reads a request's headers for the propagators; they only
// read (Get) from it.
type headerCarrier struct{ h authz.Headers }

func (c headerCarrier) Get(key string) string {
	if c.h == nil {
		return ""
	}
	return c.h.Get(key)
}
func (headerCarrier) Set(string, string) {}
func (headerCarrier) Keys() []string     { return nil }

// Option changes what NewServer builds.
type Option func(*Server)

// WithTracing has the server start a Check span for each check, through t
// (nil: no tracing).
func WithTracing(t *Tracing) Option { return func(s *Server) { s.tracing = t } }
