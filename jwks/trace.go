package jwks

import "context"

// FetchTracer hears of each fetch of a provider's key set (scheduled,
// asked for by an unknown kid, discovery included), for a trace span of its
// own. jwks imports no tracing package: the consumer implements it.
// StartFetch and FetchTrace.Join are called with the Source's lock held:
// they must be quick and must not call the Source.
type FetchTracer interface {
	// StartFetch is called as a fetch starts. ctx is the one the fetch runs
	// on (the Source's, never a check's); trigger is the context of the
	// check whose Refresh started the fetch, nil for a scheduled one. It
	// returns the context the fetch then runs on and the fetch's trace.
	StartFetch(ctx, trigger context.Context, provider string) (context.Context, FetchTrace)
}

// FetchTrace is the trace of one fetch.
type FetchTrace interface {
	// Join is called when the Refresh of a check joins the fetch under way,
	// with that check's context.
	Join(ctx context.Context)
	// End is called once, when the fetch is over, with what it did.
	End(FetchResult)
}

// statusKey is the context key of where a fetch notes the HTTP status of
// the last answer it got (discovery's or the key set's).
type statusKey struct{}

// withStatus returns ctx under which httpGet notes each answer's status
// in *code.
func withStatus(ctx context.Context, code *int) context.Context {
	return context.WithValue(ctx, statusKey{}, code)
}

// noteStatus notes code where withStatus said, if it did.
func noteStatus(ctx context.Context, code int) {
	if p, ok := ctx.Value(statusKey{}).(*int); ok {
		*p = code
	}
}
