package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
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
			var c config
			if err := readConfigFile(path, &c); err != nil {
				t.Fatal(err)
			}
			w := newConfigWatch(path, c.sum)
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

// An empty document (the file truncated, or read just after being opened
// for a rewrite) is an error that names the file, and a whole file that
// sets nothing is not mistaken for one.
func TestEmptyConfigIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr bool
	}{
		{name: "0 bytes", doc: "", wantErr: true},
		{name: "blank lines", doc: "\n   \n\t\n", wantErr: true},
		{name: "only comments", doc: "# rules:\n#   - {action: allow}\n", wantErr: true},
		{name: "document marker alone", doc: "---\n", wantErr: true},
		{name: "null", doc: "null\n", wantErr: true},
		{name: "an empty mapping, written on purpose", doc: "{}\n"},
		{name: "one setting", doc: "log_level: warn\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.doc)
			_, err := load(t, []string{"--config", path, "--issuer", "https://issuer.example.com"}, envOf())
			if tt.wantErr && (!errors.Is(err, errEmptyConfig) || !strings.Contains(err.Error(), path)) {
				t.Fatalf("error %v: want errEmptyConfig naming %s", err, path)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("error %v, want none", err)
			}
		})
	}
	// At start: exit 1, and the message names the file.
	path := writeFile(t, "")
	var out syncBuffer
	if code := run(context.Background(), []string{"serve", "--config", path, "--issuer", "https://issuer.example.com"}, envOf(), &out, &out); code != exitError || !strings.Contains(out.String(), path) {
		t.Fatalf("serve with an empty config file: exit %d, %q; want %d naming the file", code, out.String(), exitError)
	}
}
