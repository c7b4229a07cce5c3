package kubernetes

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// image is jwtauthz's published image, without a tag.
const image = "ghcr.io/jwtauthz/jwtauthz"

var imageRef = regexp.MustCompile(regexp.QuoteMeta(image) + `(?::([A-Za-z0-9._-]+))?`)

// TestImageTagOneValue wants one jwtauthz image tag everywhere one is
// written: the manifests and kustomizations of kubernetes/ (image: and
// images[].newTag), the chart's appVersion (which its image.tag defaults
// to), and the docs (docs/deployment/*.md and the README, where a tag
// follows the image's name). tools/ TestImageTags checks the same over the
// whole repository, with the release configuration; this one runs with
// the chart's tests.
func TestImageTagOneValue(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	want := ch.Metadata.AppVersion
	if !regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(want) {
		t.Fatalf("Chart.yaml appVersion %q: want the image tag, vX.Y.Z", want)
	}
	vals := values(t, filepath.Join(chartDir, "values.yaml"))
	if img := vals["image"].(map[string]any); img["repository"] != image || img["tag"] != "" {
		t.Errorf("values.yaml image %v: want repository %s and no tag (the appVersion)", img, image)
	}

	found := map[string]int{}
	check := func(where, tag string) {
		found[filepath.Dir(where)]++
		if tag != want {
			t.Errorf("%s: jwtauthz image tag %q, want the chart's appVersion %q", where, tag, want)
		}
	}
	filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		text := readFile(t, p)
		for _, m := range imageRef.FindAllStringSubmatch(text, -1) {
			if m[1] != "" {
				check("kubernetes/"+p, m[1])
			}
		}
		// images: - name: IMAGE / newTag: TAG
		for _, m := range regexp.MustCompile(`name: `+regexp.QuoteMeta(image)+`\s+newTag: (\S+)`).FindAllStringSubmatch(text, -1) {
			check("kubernetes/"+p, m[1])
		}
		return nil
	})
	docs, _ := filepath.Glob("../docs/deployment/*.md")
	for _, p := range append(docs, "../README.md") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imageRef.FindAllStringSubmatch(string(b), -1) {
			// Prose may name the tag every release moves, or the form
			// of one (as tools/ TestImageTags allows).
			if m[1] != "" && m[1] != "latest" && m[1] != "vX.Y.Z" {
				check(p, m[1])
			}
		}
	}
	for _, dir := range []string{"kubernetes/jwtauthz", "kubernetes/sidecar", "../docs/deployment"} {
		if found[dir] == 0 {
			t.Errorf("%s: no jwtauthz image tag found: is the pattern still right?", dir)
		}
	}
}
