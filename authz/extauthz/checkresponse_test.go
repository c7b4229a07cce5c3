package extauthz

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/jwtauthz/jwtauthz/authz"
)

// A denial whose reason reads as success must still deny: fail closed.
func TestDenialIsNeverOK(t *testing.T) {
	for _, r := range authz.Reasons() {
		d := authz.Decision{Reason: r}
		resp := CheckResponse(&d)
		if codes.Code(resp.Status.Code) == codes.OK || resp.GetOkResponse() != nil || resp.GetDeniedResponse().GetStatus().GetCode() == 200 {
			t.Errorf("denial with reason %v answers %v", r, resp)
		}
	}
	var zero authz.Decision
	if zero.Status() == 200 || GRPCCode(&zero) == codes.OK {
		t.Fatal("the zero Decision allows")
	}
}
