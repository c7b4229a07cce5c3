package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/jwtauthz/jwtauthz/internal/safefile"
)

// recorder is a flag.Value that keeps the raw values given on the command
// line, to apply them after the file and the environment.
type recorder struct {
	def    string
	vals   *[]string
	isBool bool
}

func (r recorder) String() string     { return r.def }
func (r recorder) Set(v string) error { *r.vals = append(*r.vals, v); return nil }
func (r recorder) IsBoolFlag() bool   { return r.isBool }

// Flags are the flags that are not settings.
type Flags struct {
	ConfigPath  string
	CheckConfig bool
	Output      string // --check-config's output: "text" (the default) or "json"
}

// output is the value of -o and --output: text or json, else a usage error
// (flag.Parse reports it as it reports an unknown flag).
type output struct{ v *string }

func (o output) String() string {
	if o.v == nil {
		return ""
	}
	return *o.v
}

func (o output) Set(v string) error {
	if v != "text" && v != "json" {
		return fmt.Errorf("%q is not text or json", v)
	}
	*o.v = v
	return nil
}

// Load reads the settings of a `serve` or `dev` command line, with
// the variables lookup finds.
func Load(cmd string, args []string, lookup func(string) (string, bool), stderr io.Writer, def *Config) (*Config, Flags, error) {
	getenv := Getenv(lookup)
	var cf Flags
	fs := flag.NewFlagSet("jwtauthz "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cf.ConfigPath, "config", "", "YAML config file (env JWTAUTHZ_CONFIG)")
	if cmd == "serve" {
		fs.BoolVar(&cf.CheckConfig, "check-config", false, "validate the configuration and exit 0 (valid) or 2")
		fs.Var(output{&cf.Output}, "output", "with --check-config: print what was resolved as text or json")
		fs.Var(output{&cf.Output}, "o", "short for --output")
	}
	given := map[string]*[]string{}
	for _, s := range settings {
		vals := new([]string)
		given[s.name] = vals
		fs.Var(recorder{def: s.show(def), vals: vals, isBool: s.isBool}, s.name, s.usage+" (env "+s.env()+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, cf, err
	}
	if fs.NArg() > 0 {
		return nil, cf, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cf.Output != "" && !cf.CheckConfig {
		return nil, cf, errors.New("--output: goes with --check-config")
	}
	if cf.Output == "" {
		cf.Output = "text"
	}
	c := def
	c.from = map[string]string{}
	if cf.ConfigPath == "" {
		cf.ConfigPath = getenv("JWTAUTHZ_CONFIG")
	}
	if cf.ConfigPath != "" {
		if err := ReadFile(cf.ConfigPath, c); err != nil {
			return nil, cf, err
		}
	}
	c.clerkEnv(getenv)
	c.introspectionEnv(lookup)
	if err := applyEnv(c, lookup); err != nil {
		return nil, cf, err
	}
	for _, s := range settings {
		if vals := *given[s.name]; len(vals) > 0 {
			if slices.Contains(vals, "") && !s.emptyOK {
				return nil, cf, s.given("--"+s.name, errors.New("is empty; leave it out to keep the file's value or the default (an empty value disables only an address)"), false)
			}
			if err := applyAll(c, s, vals); err != nil {
				return nil, cf, s.given("--"+s.name, err, true)
			}
			c.from[s.key()] = "--" + s.name
		}
	}
	return c, cf, c.Validate()
}

// given is an Error about s's value given by where, a flag or variable:
// `--cache-ttl: "5x" is not a duration (e.g. 5m)`.
func (s setting) given(where string, err error, withExample bool) *Error {
	e := &Error{Where: where, Key: s.key(), Err: err, named: true, noExample: !withExample}
	if withExample {
		e.Example = example(s.key(), false)
	}
	return e
}

// applyEnv applies the JWTAUTHZ_* variables that are set. A set but empty
// one is a value only for an address (it disables the listener); for any
// other setting it is an error, not a silent reset of the file's value: an
// empty JWTAUTHZ_AUDIENCE or JWTAUTHZ_TLS_CLIENT_CA, say from a template
// whose variable is missing, would turn a check off.
func applyEnv(c *Config, lookup func(string) (string, bool)) error {
	for _, s := range settings {
		v, ok := lookup(s.env())
		switch {
		case !ok:
			continue
		case v == "" && !s.emptyOK:
			return s.given(s.env(), errors.New("is set but empty; unset it to keep the file's value or the default (an empty value disables only an address)"), false)
		}
		if err := applyAll(c, s, []string{v}); err != nil {
			return s.given(s.env(), err, true)
		}
		c.from[s.key()] = s.env()
	}
	return nil
}

// applyAll applies the values one source gives a setting.
func applyAll(c *Config, s setting, vals []string) error {
	if s.reset != nil {
		s.reset(c)
	}
	for _, v := range vals {
		if err := s.apply(c, v); err != nil {
			return err
		}
	}
	return s.checkRange(c)
}

// ReadFile decodes a YAML file strictly into c. A document with no
// settings (empty, or only blanks, comments or null) is an error: it is
// what a file truncated or read in the middle of a rewrite looks like.
func ReadFile(path string, c *Config) error {
	b, err := safefile.Read(path, safefile.MaxConfig)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.path, c.sum = path, sha256.Sum256(b)
	if emptyDocument(b) {
		return fmt.Errorf("%s: %w", path, ErrEmptyConfig)
	}
	c.lines, err = decodeYAML(path, b, c)
	return err
}

// ErrEmptyConfig: the config file holds no settings at all, which is
// what a file truncated, or read while being rewritten, looks like.
var ErrEmptyConfig = errors.New("the document is empty (no settings, only blanks or comments): an empty config file is refused, since a truncated or half-written file looks the same")

// emptyDocument reports whether the YAML document b holds nothing: no
// bytes, only blanks and comments, or null. A syntax error is not empty:
// decodeYAML reports it.
func emptyDocument(b []byte) bool {
	if len(bytes.TrimSpace(b)) == 0 { // YAML refuses some blanks, tabs among them
		return true
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return false
	}
	if root.Kind == 0 {
		return true
	}
	doc := root.Content[0]
	return len(root.Content) == 1 && doc.Kind == yaml.ScalarNode && doc.Tag == "!!null"
}

// Getenv is lookup as an os.Getenv: "" for unset.
func Getenv(lookup func(string) (string, bool)) func(string) string {
	return func(k string) string { v, _ := lookup(k); return v }
}

// DefaultsFor are the defaults of cmd (serve or dev): dev listens on
// loopback alone (its /dev/token mints tokens it trusts), stops at once,
// logs text and serves gRPC reflection (for grpcurl). An address given by
// flag, variable or file is used as given.
func DefaultsFor(cmd string) *Config {
	def := Defaults()
	if cmd == "dev" {
		def.GRPCAddr, def.HTTPAddr, def.AdminAddr = onLoopback(def.GRPCAddr), onLoopback(def.HTTPAddr), onLoopback(def.AdminAddr)
		def.ShutdownDelay, def.LogFormat, def.GRPCReflection = 0, "text", true
	}
	return def
}

// onLoopback is the address addr, a host:port, with the host 127.0.0.1.
func onLoopback(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// Loader returns a function that reads the same command line, environment
// and file again, at each call: what a reload reads.
func Loader(cmd string, args []string, lookup func(string) (string, bool)) func() (*Config, error) {
	return func() (*Config, error) {
		c, _, err := Load(cmd, args, lookup, io.Discard, DefaultsFor(cmd))
		return c, err
	}
}

// DialAddr turns a listen address into one to connect to.
func DialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
