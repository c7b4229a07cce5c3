package server

import "github.com/jwtauthz/jwtauthz/internal/testutil"

// The helpers these tests share with those of cmd/jwtauthz and
// internal/config live in internal/testutil; these names keep the tests'
// calls short.
var (
	writeFile     = testutil.WriteFile     // a config file in a temporary directory
	envOf         = testutil.EnvOf         // an os.LookupEnv over name, value pairs
	get           = testutil.Get           // an HTTP GET with headers: status, body, headers
	dial          = testutil.Dial          // a gRPC client without TLS
	checkReq      = testutil.CheckReq      // a CheckRequest for GET api{path} with a bearer token
	cacheDir      = testutil.CacheDir      // a directory with a mode and an owner
	newHangingIdP = testutil.NewHangingIdP // an IdP whose JWKS endpoint can hang
	dialCounting  = testutil.DialCounting  // dial, counting the request messages sent
	awaitN        = testutil.AwaitN        // n receives, or a failure after 10 s
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer = testutil.SyncBuffer

// otherUID owns what another local user planted; chown needs root.
const otherUID = testutil.OtherUID
