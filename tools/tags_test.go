package tools

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// imageRef matches a reference to the image with a tag, in any text file.
var imageRef = regexp.MustCompile(regexp.QuoteMeta(image) + `:([^\s"'` + "`" + `)\]<>,]+)`)

// releaseTag is the form of a release's git tag, and so of its image tag
// (v{{ .Version }}: GoReleaser's .Version is the tag without its v).
var releaseTag = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

// TestImageTags checks that the manifests, the chart if there is one, and
// the docs name one image tag, that it is the form of tag a release pushes,
// and that docs/deployment/release.md says which it is.
func TestImageTags(t *testing.T) {
	c := goreleaser(t)
	if tags := c.DockersV2[0].Tags; len(tags) == 0 || action.ReplaceAllString(tags[0], "{{$1}}") != "v{{.Version}}" {
		t.Fatalf("dockers_v2 tags %q: want v{{ .Version }} first, the git tag", tags)
	}
	want := kustomizeTag(t)
	if !releaseTag.MatchString(want) {
		t.Fatalf("the kustomizations pin %s:%s, not a release tag (vX.Y.Z)", image, want)
	}
	for _, ch := range charts(t) {
		if ch.tag != want || ch.repository != image {
			t.Errorf("%s: image %s:%s, want %s:%s as the kustomizations", ch.dir, ch.repository, ch.tag, image, want)
		}
	}
	// Placeholders the docs may use, and the tag every release also moves.
	allowed := []string{want, "latest", "vX.Y.Z"}
	found := 0
	walkText(t, func(rel, text string) {
		for _, m := range imageRef.FindAllStringSubmatch(text, -1) {
			found++
			if !slices.Contains(allowed, m[1]) {
				t.Errorf("%s names %s, want tag %s as the kustomizations (or latest, or vX.Y.Z in prose)", rel, m[0], want)
			}
		}
	})
	if found == 0 {
		t.Errorf("no file names %s:<tag>", image)
	}
	if doc := readText(t, "docs/deployment/release.md"); !strings.Contains(doc, image+":"+want) {
		t.Errorf("docs/deployment/release.md does not say that the manifests use %s:%s", image, want)
	}
}

// kustomizeTag returns the newTag every kustomization under kubernetes/
// sets for the image; they must agree, and one must set it.
func kustomizeTag(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "kubernetes", "*", "kustomization.yaml"))
	tag := ""
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		var k struct {
			Images []struct {
				Name    string
				NewName string `yaml:"newName"`
				NewTag  string `yaml:"newTag"`
			}
		}
		readYAML(t, rel, &k)
		for _, img := range k.Images {
			if img.Name != image {
				continue
			}
			if img.NewName != "" && img.NewName != image {
				t.Errorf("%s: newName %s: the release pushes %s", rel, img.NewName, image)
			}
			if tag != "" && img.NewTag != tag {
				t.Errorf("%s: newTag %q, another kustomization sets %q", rel, img.NewTag, tag)
			}
			tag = img.NewTag
		}
	}
	if tag == "" {
		t.Fatalf("no kubernetes/*/kustomization.yaml sets a newTag for %s", image)
	}
	return tag
}

type chart struct{ dir, repository, tag string }

// charts returns each Helm chart of the repository (a Chart.yaml) with the
// image its values.yaml runs: image.tag, else the chart's appVersion, as
// Helm charts conventionally default it.
func charts(t *testing.T) []chart {
	t.Helper()
	var out []chart
	walk(t, func(rel string) {
		if filepath.Base(rel) != "Chart.yaml" {
			return
		}
		dir := filepath.Dir(rel)
		var meta struct {
			AppVersion string `yaml:"appVersion"`
		}
		var values struct {
			Image struct{ Repository, Tag string }
		}
		readYAML(t, rel, &meta)
		readYAML(t, filepath.Join(dir, "values.yaml"), &values)
		tag := values.Image.Tag
		if tag == "" {
			tag = meta.AppVersion
		}
		out = append(out, chart{dir, values.Image.Repository, tag})
	})
	return out
}

// walk calls f with the path, from the repository root, of every file
// outside .git.
func walk(t *testing.T, f func(rel string)) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			f(rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// walkText calls f with every Markdown, YAML, JSON and template file.
func walkText(t *testing.T, f func(rel, text string)) {
	t.Helper()
	walk(t, func(rel string) {
		switch filepath.Ext(rel) {
		case ".md", ".yaml", ".yml", ".json", ".tpl", ".txt":
			f(rel, readText(t, rel))
		}
	})
}
