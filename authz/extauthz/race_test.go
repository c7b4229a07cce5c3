//go:build race

package extauthz

// raceEnabled: the race detector allocates, and sync.Pool drops items.
const raceEnabled = true
