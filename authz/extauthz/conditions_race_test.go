//go:build race

package extauthz_test

// raceEnabled: the race detector allocates, and sync.Pool drops items.
const raceEnabled = true
