// Package envoy holds the Envoy configurations shipped with jwtauthz
// (envoy.yaml, envoy-http.yaml, envoy-uds.yaml, and the one inside the
// Kubernetes sidecar's ConfigMap) and Parse, which reads one the way Envoy
// does before it starts, as closely as is possible without an Envoy binary.
//
// Nothing in jwtauthz itself imports this package: it exists for the tests
// that keep the shipped files loadable.
package envoy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// The types the shipped configurations name in "@type", so that
	// protojson can resolve each typed_config.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// Load reads the Envoy bootstrap file at path and checks it as Parse does.
func Load(path string) (*bootstrapv3.Bootstrap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bs, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return bs, nil
}

// Parse decodes an Envoy bootstrap written in YAML and checks it:
//   - strictly: a duplicate YAML key, an unknown field or an "@type" that
//     names no linked type is an error;
//   - with the generated validation rules (ValidateAll) of the bootstrap and
//     of every message packed in a google.protobuf.Any, which ValidateAll
//     itself does not enter;
//   - for what Envoy refuses at start-up beyond those rules: duplicate
//     listener or cluster names, a reference to an undefined cluster, an
//     HTTP filter chain that does not end in the router, and per-route
//     filter configuration for a filter that is not in the chain.
func Parse(y []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yamlToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	bs := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, bs); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := Validate(bs); err != nil {
		return nil, err
	}
	if err := checkReferences(bs); err != nil {
		return nil, err
	}
	return bs, nil
}

// Validate runs ValidateAll on m and on every message packed in an Any
// inside it, at any depth.
func Validate(m proto.Message) error {
	var errs []error
	err := walk(m.ProtoReflect(), "", true, func(m proto.Message, path string, root bool) error {
		if v, ok := m.(interface{ ValidateAll() error }); ok && root {
			if err := v.ValidateAll(); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", orTop(path), m.ProtoReflect().Descriptor().FullName(), err))
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// Find returns every message of type T inside m, those packed in an Any
// included (as copies: changing one does not change m).
func Find[T proto.Message](m proto.Message) []T {
	var out []T
	walk(m.ProtoReflect(), "", true, func(m proto.Message, _ string, _ bool) error {
		if t, ok := m.(T); ok {
			out = append(out, t)
		}
		return nil
	})
	return out
}

// Cluster returns the static cluster called name, or nil.
func Cluster(bs *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

// Endpoints lists the addresses of c's endpoints as jwtauthz's flags write
// them: host:port, or unix:///path for a pipe.
func Endpoints(c *clusterv3.Cluster) []string {
	var out []string
	for _, le := range c.GetLoadAssignment().GetEndpoints() {
		for _, ep := range le.GetLbEndpoints() {
			out = append(out, Address(ep.GetEndpoint().GetAddress()))
		}
	}
	return out
}

// Address writes a as host:port, or unix:///path for a pipe.
func Address(a *corev3.Address) string {
	if p := a.GetPipe(); p != nil {
		return "unix://" + p.GetPath()
	}
	sa := a.GetSocketAddress()
	return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
}

// walk calls fn on m and on every message below it, entering each Any:
// root is true for m itself and for each message unpacked from an Any.
func walk(m protoreflect.Message, path string, root bool, fn func(m proto.Message, path string, root bool) error) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", orTop(path), a.GetTypeUrl(), err)
		}
		return walk(inner.ProtoReflect(), path, true, fn)
	}
	if err := fn(m.Interface(), path, root); err != nil {
		return err
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = walk(l.Get(i).Message(), p+"["+strconv.Itoa(i)+"]", false, fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = walk(mv.Message(), p+"["+k.String()+"]", false, fn)
				return err == nil
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			err = walk(v.Message(), p, false, fn)
		}
		return err == nil
	})
	return err
}

func orTop(path string) string {
	if path == "" {
		return "bootstrap"
	}
	return path[1:]
}

// checkReferences refuses what Envoy refuses when it builds the listeners
// and clusters, where the validation rules cannot see it.
func checkReferences(bs *bootstrapv3.Bootstrap) error {
	var errs []error
	clusters := map[string]bool{}
	for _, c := range bs.GetStaticResources().GetClusters() {
		if clusters[c.GetName()] {
			errs = append(errs, fmt.Errorf("cluster %q defined twice", c.GetName()))
		}
		clusters[c.GetName()] = true
	}
	listeners := map[string]bool{}
	for _, l := range bs.GetStaticResources().GetListeners() {
		if listeners[l.GetName()] {
			errs = append(errs, fmt.Errorf("listener %q defined twice", l.GetName()))
		}
		listeners[l.GetName()] = true
	}
	walk(bs.ProtoReflect(), "", true, func(m proto.Message, path string, _ bool) error {
		var ref string
		switch m := m.(type) {
		case *routev3.RouteAction:
			ref = m.GetCluster()
		case *routev3.WeightedCluster_ClusterWeight:
			ref = m.GetName()
		case *corev3.GrpcService_EnvoyGrpc:
			ref = m.GetClusterName()
		case *corev3.HttpUri:
			ref = m.GetCluster()
		}
		if ref != "" && !clusters[ref] {
			errs = append(errs, fmt.Errorf("%s: no cluster %q", orTop(path), ref))
		}
		return nil
	})
	for _, hcm := range Find[*hcmv3.HttpConnectionManager](bs) {
		errs = append(errs, checkFilterChain(hcm)...)
	}
	return errors.Join(errs...)
}

// checkFilterChain checks one HTTP connection manager: the router last and
// only there, and per-route configuration only for filters in the chain.
func checkFilterChain(hcm *hcmv3.HttpConnectionManager) []error {
	var errs []error
	names := map[string]bool{}
	fs := hcm.GetHttpFilters()
	for i, f := range fs {
		names[f.GetName()] = true
		isRouter := f.GetTypedConfig().MessageIs((*routerv3.Router)(nil))
		if isRouter != (i == len(fs)-1) {
			errs = append(errs, fmt.Errorf("%s: http filter %d (%s): the router must be the last filter, and only the last", hcm.GetStatPrefix(), i, f.GetName()))
		}
	}
	if len(fs) == 0 {
		errs = append(errs, fmt.Errorf("%s: no http filters: the router must be the last", hcm.GetStatPrefix()))
	}
	perFilter := func(where string, cfg map[string]*anypb.Any) {
		for name := range cfg {
			if !names[name] {
				errs = append(errs, fmt.Errorf("%s: %s: typed_per_filter_config for %q, which is not in the filter chain", hcm.GetStatPrefix(), where, name))
			}
		}
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		perFilter("virtual host "+vh.GetName(), vh.GetTypedPerFilterConfig())
		for i, r := range vh.GetRoutes() {
			perFilter(fmt.Sprintf("virtual host %s route %d", vh.GetName(), i), r.GetTypedPerFilterConfig())
		}
	}
	return errs
}

// yamlToJSON turns the first YAML document of y into JSON for protojson,
// reading scalars as YAML 1.1 does (as Envoy's YAML reader and
// sigs.k8s.io/yaml do): an unquoted yes, no, on, off, y or n is a bool, and
// a timestamp stays the string it is written as. A key written twice, or two
// keys that name the same JSON key (1 and "1", 1 and 0x1), is an error; a
// non-string key becomes its value's text (true, 1, 1.5); a null, mapping
// or sequence key is an error.
func yamlToJSON(y []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(y, &doc); err != nil {
		return nil, err
	}
	var v any
	if doc.Kind != 0 {
		if err := yaml11Scalars(&doc); err != nil {
			return nil, err
		}
		if err := doc.Decode(&v); err != nil {
			return nil, err
		}
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// yaml11Bools are the YAML 1.1 words for true and false that YAML 1.2 (and
// so go.yaml.in/yaml/v3) reads as strings.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// yaml11Scalars retags n's scalars, below it at any depth, as YAML 1.1
// reads them: a plain or !!bool-tagged YAML 1.1 bool word is a bool, and a
// timestamp is a string. It refuses a mapping with two keys that name the
// same JSON key. Aliases are not followed: their anchors are in the tree.
func yaml11Scalars(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b, isBool := yaml11Bools[n.Value]
		switch {
		case isBool && (n.Tag == "!!bool" || n.Tag == "!!str" && n.Style == 0):
			n.Tag, n.Value = "!!bool", strconv.FormatBool(b)
		case n.Tag == "!!timestamp":
			n.Tag = "!!str"
		}
	}
	for _, c := range n.Content {
		if err := yaml11Scalars(c); err != nil {
			return err
		}
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	seen := map[string]int{} // JSON key → line
	for i := 0; i < len(n.Content); i += 2 {
		kn := n.Content[i]
		if kn.Kind != yaml.ScalarNode || kn.Tag == "!!merge" {
			continue // Decode and jsonable check the others
		}
		var k any
		if err := kn.Decode(&k); err != nil {
			return err
		}
		ks, err := keyString(k)
		if err != nil {
			return fmt.Errorf("line %d: %w", kn.Line, err)
		}
		if line, dup := seen[ks]; dup {
			return fmt.Errorf("line %d: mapping key %q already defined at line %d", kn.Line, ks, line)
		}
		seen[ks] = kn.Line
	}
	return nil
}

// jsonable returns v with every mapping's keys turned into strings.
func jsonable(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[k] = e
		}
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, err := keyString(k)
			if err != nil {
				return nil, err
			}
			if _, dup := out[ks]; dup {
				return nil, fmt.Errorf("mapping key %q written twice (as %v)", ks, k)
			}
			if out[ks], err = jsonable(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		for i, e := range v {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[i] = e
		}
		return v, nil
	}
	return v, nil
}

// keyString writes a YAML mapping key as a JSON object key.
func keyString(k any) (string, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case bool:
		return strconv.FormatBool(k), nil
	case int:
		return strconv.Itoa(k), nil
	case int64:
		return strconv.FormatInt(k, 10), nil
	case uint64:
		return strconv.FormatUint(k, 10), nil
	case float64:
		switch s := strconv.FormatFloat(k, 'g', -1, 32); s {
		case "+Inf":
			return ".inf", nil
		case "-Inf":
			return "-.inf", nil
		case "NaN":
			return ".nan", nil
		default:
			return s, nil
		}
	}
	return "", fmt.Errorf("mapping key %v (%T): not a string, number or bool", k, k)
}
