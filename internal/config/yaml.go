package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeYAML decodes doc into out strictly: an unknown or repeated key, or a
// value of the wrong type, is an error that names the key by its path
// (providers[0].jwks_url) and line.
func decodeYAML(doc []byte, out any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if root.Kind == 0 { // empty document
		return nil
	}
	return decodeNode(root.Content[0], reflect.ValueOf(out).Elem(), "")
}

func decodeNode(n *yaml.Node, v reflect.Value, path string) error {
	where := path
	if where == "" {
		where = "top level"
	}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return nil // `key:` with no value leaves the default
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: line %d: must be a mapping", where, n.Line)
		}
		return decodeMapping(n, v, path)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: line %d: must be a list", where, n.Line)
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
		msg = strings.TrimSpace(msg)
		if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
			msg = msg[i+2:]
		}
		return fmt.Errorf("%s: line %d: %s", where, n.Line, msg)
	}
	return nil
}

func decodeMapping(n *yaml.Node, v reflect.Value, path string) error {
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
			return fmt.Errorf("%s: line %d: unknown key", key, k.Line)
		case seen[k.Value]:
			return fmt.Errorf("%s: line %d: key given twice", key, k.Line)
		}
		seen[k.Value] = true
		if err := decodeNode(val, v.Field(idx), key); err != nil {
			return err
		}
	}
	return nil
}
