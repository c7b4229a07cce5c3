package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// The user documentation, from this package's directory.
const (
	readmePath = root + "/README.md"
	docsDir    = root + "/docs"
)

// docFiles returns README.md and every Markdown file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{readmePath}
	err := filepath.WalkDir(docsDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// fenced matches a fenced code block and its language.
var fenced = regexp.MustCompile("(?s)```([a-z]*)\n(.*?)```")

// codeBlocks returns the bodies of the blocks of lang in a Markdown text.
func codeBlocks(md, lang string) []string {
	var out []string
	for _, m := range fenced.FindAllStringSubmatch(md, -1) {
		if m[1] == lang {
			out = append(out, m[2])
		}
	}
	return out
}

// TestReadmeOpensWithTheCommands wants the two commands at the top of the
// README, and the README short: the rest is in docs/.
func TestReadmeOpensWithTheCommands(t *testing.T) {
	readme := readText(t, readmePath)
	for _, must := range []string{"go run ./cmd/jwtauthz dev", "go test ./..."} {
		if !strings.Contains(readme[:min(len(readme), 800)], must) {
			t.Errorf("README.md does not open with %q", must)
		}
	}
	if n := strings.Count(readme, "\n"); n > 200 {
		t.Errorf("README.md has %d lines, more than 200: move the detail to docs/", n)
	}
}

// TestReadmeEnvoySnippet keeps the README's Envoy filter chain the one
// envoy/envoy.yaml ships (and `go test ./envoy/` validates).
func TestReadmeEnvoySnippet(t *testing.T) {
	var snippet struct {
		HTTPFilters []any `yaml:"http_filters"`
	}
	found := false
	for _, b := range codeBlocks(readText(t, readmePath), "yaml") {
		if strings.HasPrefix(b, "http_filters:") {
			if err := yaml.Unmarshal([]byte(b), &snippet); err != nil {
				t.Fatalf("README.md's http_filters block: %v", err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("README.md has no yaml block starting with http_filters:")
	}
	var boot any
	if err := yaml.Unmarshal([]byte(readText(t, root+"/envoy/envoy.yaml")), &boot); err != nil {
		t.Fatal(err)
	}
	want := httpFilters(boot)
	if want == nil {
		t.Fatal("envoy/envoy.yaml: no http_filters")
	}
	if !reflect.DeepEqual(snippet.HTTPFilters, want) {
		t.Errorf("README.md's http_filters differ from envoy/envoy.yaml's:\n got %v\nwant %v", snippet.HTTPFilters, want)
	}
}

// httpFilters finds the first http_filters list in a decoded YAML tree.
func httpFilters(v any) []any {
	switch v := v.(type) {
	case map[string]any:
		if hf, ok := v["http_filters"].([]any); ok {
			return hf
		}
		for _, e := range v {
			if hf := httpFilters(e); hf != nil {
				return hf
			}
		}
	case []any:
		for _, e := range v {
			if hf := httpFilters(e); hf != nil {
				return hf
			}
		}
	}
	return nil
}

// TestDocsConfigExamples runs `jwtauthz serve --check-config` on every
// YAML example of the configuration and provider pages that declares
// providers, so that an example a reader copies is one jwtauthz accepts.
func TestDocsConfigExamples(t *testing.T) {
	n := 0
	for _, page := range []string{"configuration.md", "providers.md"} {
		for i, b := range codeBlocks(readText(t, docsDir+"/"+page), "yaml") {
			var top map[string]any
			if yaml.Unmarshal([]byte(b), &top) != nil || top["providers"] == nil {
				continue // a fragment: a rule, one list entry
			}
			n++
			path := filepath.Join(t.TempDir(), "jwtauthz.yaml")
			if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			// Only the introspection examples' client secrets, which
			// are never in the file.
			env := func(k string) (string, bool) {
				ok := strings.HasPrefix(k, "JWTAUTHZ_PROVIDERS_") && strings.HasSuffix(k, "_CLIENT_SECRET")
				return map[bool]string{true: "example-secret"}[ok], ok
			}
			if code := run(context.Background(), []string{"serve", "--config", path, "--check-config"}, env, &stdout, &stderr); code != exitOK {
				t.Errorf("docs/%s, yaml block %d: --check-config exit %d: %s\n%s", page, i, code, stderr.String(), b)
			}
		}
	}
	if n == 0 {
		t.Error("no YAML example with providers found in docs/configuration.md or docs/providers.md")
	}
}

// mdLink matches a Markdown link or image target.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinks wants every relative link of README.md and docs/ to name a
// file that exists and, with a #fragment, a heading (or an id) of it.
func TestDocsLinks(t *testing.T) {
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := headingAnchors(readText(t, path))
		anchors[path] = a
		return a
	}
	for _, file := range docFiles(t) {
		text := fenced.ReplaceAllString(readText(t, file), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			full := file
			if path != "" {
				full = filepath.Join(filepath.Dir(file), path)
			}
			info, err := os.Stat(full)
			if err != nil {
				t.Errorf("%s: link %s: %v", file, target, err)
				continue
			}
			if frag != "" && (info.IsDir() || !strings.HasSuffix(full, ".md") || !anchorsOf(full)[frag]) {
				t.Errorf("%s: link %s: no heading #%s in %s", file, target, frag, full)
			}
		}
	}
}

var explicitID = regexp.MustCompile(`<a id="([^"]+)">`)

// headingAnchors returns the anchors GitHub makes for a Markdown text's
// headings (lower case, punctuation dropped, spaces as hyphens, a number
// after repeats), and its explicit <a id> anchors.
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(fenced.ReplaceAllString(md, ""), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	for _, m := range explicitID.FindAllStringSubmatch(md, -1) {
		out[m[1]] = true
	}
	return out
}

// commitRef is how a commit would be named in prose.
var commitRef = regexp.MustCompile(`(?i)\b(at|commit|since|before) [0-9a-f]{7,12}\b`)

// TestDocsNameNoCommits keeps the user documentation about current
// behaviour: no commit hashes (git has the history).
func TestDocsNameNoCommits(t *testing.T) {
	for _, file := range docFiles(t) {
		for i, line := range strings.Split(readText(t, file), "\n") {
			if m := commitRef.FindString(line); m != "" {
				t.Errorf("%s:%d: %q names a commit", file, i+1, m)
			}
		}
	}
}
