package authz

import (
	"context"
	"crypto"
	"testing"
)

// A request with more headers than the codec reads is denied, not decided
// on the headers it did read.
func TestOversizeRequestIsDenied(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Providers = []ProviderConfig{{Name: "p", Issuer: "https://p", Keys: nopKeys{}}}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Check(t.Context(), &Request{Oversize: true, Headers: MapHeaders{}})
	if d.Allow || d.Reason != ReasonRequestTooLarge || d.Status() != 431 {
		t.Fatalf("%+v", d)
	}
}

type nopKeys struct{}

func (nopKeys) Key(string) (crypto.PublicKey, string, bool) { return nil, "", false }
func (nopKeys) Ready() bool                                 { return false }
func (nopKeys) Refresh(context.Context) bool                { return false }
func (nopKeys) EachKey(func(crypto.PublicKey, string) bool) {}
func (nopKeys) HasKey(crypto.PublicKey) bool                { return false }
