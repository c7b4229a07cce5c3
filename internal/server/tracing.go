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
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/jwtauthz/jwtauthz/authz/extauthz"
	"github.com/jwtauthz/jwtauthz/internal/config"
)

// tracing is the OTLP export of check spans: the SDK's provider, batching
// to an OTLP exporter, and the spans extauthz and the engine make through
// it.
type tracing struct {
	tp     *sdktrace.TracerProvider
	checks *extauthz.Tracing
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
	return &tracing{tp: tp, checks: extauthz.NewTracing(tp)}, nil
}

// shutdown flushes the spans not yet exported and stops the exporter.
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}
