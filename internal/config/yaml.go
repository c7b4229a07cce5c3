package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder decodes a config file strictly: an unknown or repeated key, or a
// value of the wrong type, is an Error at its line. It records the line of
// every key (lines, by path: providers[0].jwks_url), for the errors found
// later. A setting's scalar is parsed as its flag's value is, so that a
// bad value reads the same from the file, a flag or a variable.
type decoder struct {
	file  string
	lines map[string]int
}

// decodeYAML decodes doc, the file named file, into c.
func decodeYAML(file string, doc []byte, c *Config) (map[string]int, error) {
	d := &decoder{file: file, lines: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, d.syntaxError(err)
	}
	if root.Kind == 0 { // empty document
		return d.lines, nil
	}
	return d.lines, d.node(root.Content[0], reflect.ValueOf(c).Elem(), "")
}

// syntaxError is a YAML parse error at its line, if it names one.
func (d *decoder) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &Error{Where: d.at(line), Err: fmt.Errorf("%s", after), inFile: true, noExample: true}
			}
		}
	}
	return &Error{Where: d.file, Err: fmt.Errorf("%s", msg), inFile: true, noExample: true}
}

func (d *decoder) at(line int) string { return d.file + ":" + strconv.Itoa(line) }

// fail is an Error about key at line; withExample adds key's example.
func (d *decoder) fail(line int, key string, withExample bool, err error) *Error {
	if key == "" {
		key = "top level"
	}
	e := &Error{Where: d.at(line), Key: key, Err: err, inFile: true, noExample: !withExample}
	if withExample {
		e.Example = example(key, true)
	}
	return e
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	configType   = reflect.TypeFor[Config]()
)

func (d *decoder) node(n *yaml.Node, v reflect.Value, path string) error {
	n = resolve(n)
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil // `key:` with no value leaves the default
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.fail(n.Line, path, true, wrongType(n, v.Type()))
		}
		return d.mapping(n, v, path)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			return d.fail(n.Line, path, true, wrongType(n, v.Type()))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", path, i)
			d.lines[key] = item.Line
			if err := d.node(item, s.Index(i), key); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case v.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			d.lines[fmt.Sprintf("%s[%d]", path, i)] = item.Line
		}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return d.decodeError(n, v.Type(), path)
	}
	return nil
}

// decodeError reports what in n does not decode into t: n itself, or the
// first item or value of a list or mapping that does not.
func (d *decoder) decodeError(n *yaml.Node, t reflect.Type, path string) error {
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if item.Decode(reflect.New(t.Elem()).Interface()) != nil {
				return d.decodeError(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if val.Decode(reflect.New(t.Elem()).Interface()) != nil {
				return d.decodeError(val, t.Elem(), path+"."+k.Value)
			}
		}
	}
	return d.fail(n.Line, path, true, wrongType(n, t))
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) error {
	fields := map[string]int{}
	for i := 0; i < v.NumField(); i++ {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if path != "" {
			key = path + "." + k.Value
		}
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			return d.fail(k.Line, key, false, fmt.Errorf("unknown key%s", suggest(k.Value, fields)))
		case seen[k.Value]:
			return d.fail(k.Line, key, false, fmt.Errorf("key given twice"))
		}
		seen[k.Value] = true
		d.lines[key] = k.Line
		if s, ok := settingOf(v, path, k.Value); ok {
			if err := d.setting(s, val, v.Addr().Interface().(*Config), key, v.Field(idx).Type()); err != nil {
				return err
			}
			continue
		}
		if err := d.node(val, v.Field(idx), key); err != nil {
			return err
		}
	}
	return nil
}

// resolve is the node an alias (*name) stands for, or n.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// settingOf returns the setting a top-level key of the file gives, if it is
// one whose value is a single scalar (not a list: a list is a YAML list).
func settingOf(v reflect.Value, path, key string) (setting, bool) {
	if path != "" || v.Type() != configType {
		return setting{}, false
	}
	for _, s := range settings {
		if s.key() == key && s.reset == nil {
			return s, true
		}
	}
	return setting{}, false
}

// setting applies the file's value of s as its flag's would be applied.
// The range (negative, 0) is checked with the other sources' values, once
// every source is read.
func (d *decoder) setting(s setting, n *yaml.Node, c *Config, key string, t reflect.Type) error {
	line := n.Line // an alias's, not the line it names
	n = resolve(n)
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil
	case n.Kind != yaml.ScalarNode:
		return d.fail(line, key, true, wrongType(n, t))
	}
	if err := s.apply(c, n.Value); err != nil {
		return d.fail(line, key, true, err)
	}
	return nil
}

// wrongType says what n should have been to decode into t.
func wrongType(n *yaml.Node, t reflect.Type) error {
	want := typeName(t)
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Errorf("%q is not %s", n.Value, want)
	case yaml.SequenceNode:
		return fmt.Errorf("must be %s, not a list", want)
	case yaml.MappingNode:
		return fmt.Errorf("must be %s, not a mapping", want)
	}
	return fmt.Errorf("must be %s", want)
}

func typeName(t reflect.Type) string {
	if t == durationType {
		return "a duration"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.String:
		return "text"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// suggest names the known key closest to an unknown one, if one is close.
func suggest(key string, fields map[string]int) string {
	best, dist := "", 3 // at most two edits away
	for f := range fields {
		if d := editDistance(key, f); d < dist || d == dist && f < best {
			best, dist = f, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
