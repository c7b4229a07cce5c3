package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/internal/config"
	"github.com/jwtauthz/jwtauthz/jwks"
)

// tracing is the OTLP export of check spans: the SDK's provider, batching
// to an OTLP exporter, the spans extauthz and the engine make through it,
// and the key sources' fetch spans.
type tracing struct {
	tp      *sdktrace.TracerProvider
	checks  *extauthz.Tracing
	fetches *fetchTracing
}

// otlpOn reports whether spans are exported, and to where: --otlp-endpoint,
// else the OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables (read by the
// exporter itself, endpoint then ""). OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turn it off.
func otlpOn(cfg *config.Config) (on bool, endpoint string) {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || os.Getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false, ""
	}
	if cfg.OTLPEndpoint != "" {
		return true, cfg.OTLPEndpoint
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "", ""
}

// otlpProtocol is --otlp-protocol, else the OTEL_EXPORTER_OTLP_*PROTOCOL
// variables, else grpc.
func otlpProtocol(cfg *config.Config) (string, error) {
	p := cfg.OTLPProtocol
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p == "" {
			if p = os.Getenv(v); p != "" && p != "grpc" && p != "http/protobuf" {
				return "", fmt.Errorf("%s: %q is not grpc or http/protobuf", v, p)
			}
		}
	}
	if p == "" {
		p = "grpc"
	}
	return p, nil
}

// newTracing builds the span export cfg asks for; nil when tracing is off.
// The sampler is the SDK's: OTEL_TRACES_SAMPLER (default parentbased_always_on,
// which follows the caller's sampled flag).
func newTracing(cfg *config.Config, log *slog.Logger, version string) (*tracing, error) {
	on, endpoint := otlpOn(cfg)
	if !on {
		return nil, nil
	}
	proto, err := otlpProtocol(cfg)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	var exp sdktrace.SpanExporter
	switch proto {
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		var opts []otlptracehttp.Option
		if endpoint != "" {
			u, perr := url.Parse(endpoint)
			if perr != nil {
				return nil, fmt.Errorf("otlp_endpoint: %w", perr)
			}
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces" // a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "jwtauthz"), attribute.String("service.version", version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		log.Warn("otlp: resource attributes", "err", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("otlp export", "err", err) }))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("tracing on: exporting spans over OTLP", "protocol", proto, "endpoint", endpoint)
	return &tracing{tp: tp, checks: extauthz.NewTracing(tp), fetches: newFetchTracing(tp)}, nil
}

// shutdown flushes the spans not yet exported and stops the exporter.
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Names of the key fetch span and its attributes.
const (
	spanFetch     = "jwks.fetch"                // one fetch of a provider's key set
	attrOutcome   = "jwtauthz.outcome"          // ok or error
	attrKeys      = "jwtauthz.keys"             // keys in the set in use after the fetch
	attrTriggered = "jwtauthz.triggered"        // a check's unknown kid started the fetch
	attrHTTP      = "http.response.status_code" // of the last answer, if any
	attrLink      = "jwtauthz.link"             // on a link: triggered or joined
)

// fetchTracing is the key sources' jwks.FetchTracer: a jwks.fetch span per
// fetch. The fetch belongs to no check (it runs on the source's context,
// and other checks join it), so the span is a root span that links to the
// jwks.wait span of each check that started or joined the fetch, and each
// of those links back to it.
type fetchTracing struct{ tracer trace.Tracer }

var _ jwks.FetchTracer = (*fetchTracing)(nil)

func newFetchTracing(tp trace.TracerProvider) *fetchTracing {
	return &fetchTracing{tracer: tp.Tracer(extauthz.TracerName)}
}

// StartFetch implements jwks.FetchTracer.
func (f *fetchTracing) StartFetch(ctx, trigger context.Context, provider string) (context.Context, jwks.FetchTrace) {
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithAttributes(attribute.String(extauthz.AttrProvider, provider))}
	if trigger != nil {
		if sc := trace.SpanContextFromContext(trigger); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String(attrLink, "triggered")}}))
		}
	}
	ctx, sp := f.tracer.Start(ctx, spanFetch, opts...)
	ft := &fetchTrace{sp: sp}
	if trigger != nil {
		ft.linkBack(trigger)
	}
	return ctx, ft
}

// fetchTrace is the jwks.fetch span of one fetch.
type fetchTrace struct{ sp trace.Span }

// linkBack links the jwks.wait span in ctx, if any, to the fetch span.
func (t *fetchTrace) linkBack(ctx context.Context) {
	if sc := t.sp.SpanContext(); sc.IsValid() {
		trace.SpanFromContext(ctx).AddLink(trace.Link{SpanContext: sc})
	}
}

// Join implements jwks.FetchTrace: the fetch and the joining check's
// jwks.wait span link to each other.
func (t *fetchTrace) Join(ctx context.Context) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		t.sp.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String(attrLink, "joined")}})
	}
	t.linkBack(ctx)
}

// End implements jwks.FetchTrace.
func (t *fetchTrace) End(r jwks.FetchResult) {
	if t.sp.IsRecording() {
		outcome := "ok"
		if r.Err != nil {
			outcome = "error"
			t.sp.SetStatus(codes.Error, r.Err.Error()) // jwks's errors show no URL query or user info
		}
		t.sp.SetAttributes(attribute.String(attrOutcome, outcome), attribute.Int(attrKeys, r.Keys), attribute.Bool(attrTriggered, r.Triggered))
		if r.Status != 0 {
			t.sp.SetAttributes(attribute.Int(attrHTTP, r.Status))
		}
	}
	t.sp.End()
}

// fetchTracer is what the key sources tell of their fetches: nil when
// tracing is off.
func (t *tracing) fetchTracer() jwks.FetchTracer {
	if t == nil {
		return nil
	}
	return t.fetches
}
