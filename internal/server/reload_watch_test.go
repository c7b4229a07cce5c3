package server

import (
	"os"
	"testing"

	"github.com/jwtauthz/jwtauthz/internal/config"
)

// TestConfigWatch drives the watcher's decisions poll by poll: a change is
// applied once two polls read the same content, at once when it comes
// through a new symlink target (a ConfigMap update), never half-written.
func TestConfigWatch(t *testing.T) {
	type step struct {
		how     string // "write" in place, "swap" the ConfigMap's ..data, "remove", or "" for nothing
		content string
		want    pollAction
	}
	const edit = "rules:\n  - {action: allow}\n"
	tests := []struct {
		name      string
		configMap bool
		steps     []step
	}{
		{name: "unchanged", steps: []step{{"", "", pollSame}, {"write", fullRules, pollSame}}},
		{name: "half-written, then whole within the settle time", steps: []step{
			{"write", halfRules, pollPending}, {"write", fullRules, pollReverted}, {"", "", pollSame}}},
		{name: "an edit that stays is applied at the next poll", steps: []step{
			{"write", edit, pollPending}, {"", "", pollSettled}, {"", "", pollSame}}},
		{name: "a file still being written waits for the last write", steps: []step{
			{"write", halfRules, pollPending}, {"write", edit, pollPending}, {"", "", pollSettled}}},
		{name: "truncated to 0 bytes is settled like any content (and reload refuses it)", steps: []step{
			{"write", "", pollPending}, {"", "", pollSettled}, {"", "", pollSame}}},
		{name: "removed and written anew is not a symlink swap", steps: []step{
			{"remove", "", pollPending}, {"write", halfRules, pollPending}, {"write", edit, pollPending}, {"", "", pollSettled}}},
		{name: "ConfigMap update applies at once", configMap: true, steps: []step{
			{"swap", edit, pollSwapped}, {"", "", pollSame}, {"swap", fullRules, pollSwapped}}},
		{name: "ConfigMap update with the same content", configMap: true, steps: []step{{"swap", fullRules, pollSame}}},
		{name: "ConfigMap's file written in place settles", configMap: true, steps: []step{
			{"write", halfRules, pollPending}, {"", "", pollSettled}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			var cm *configMap
			if tt.configMap {
				cm = newConfigMap(t, fullRules)
				path = cm.path()
			} else {
				path = writeFile(t, fullRules)
			}
			var c config.Config
			if err := config.ReadFile(path, &c); err != nil {
				t.Fatal(err)
			}
			w := newConfigWatch(path, c.Sum())
			for i, s := range tt.steps {
				var err error
				switch s.how {
				case "write":
					err = os.WriteFile(path, []byte(s.content), 0o600) // through the links, in place
				case "swap":
					cm.update(s.content)
				case "remove":
					err = os.Remove(path)
				}
				if err != nil {
					t.Fatal(err)
				}
				got, cur := w.poll()
				if got != s.want {
					t.Fatalf("step %d (%s): poll %d, want %d", i, s.how, got, s.want)
				}
				if got == pollSettled || got == pollSwapped {
					w.handled = cur.sum // as pollConfig does once it has applied or rejected it
				}
			}
		})
	}
}
