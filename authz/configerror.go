package authz

import "fmt"

// ConfigError is an error New, Validate or Update return about one key of
// the configuration: Key is its path as the YAML file spells it
// (rules[2].match.path_regex, providers[0]), where rules and providers
// count from 0 in the order Config lists them. A caller that knows where
// each key came from (a file's line) finds it with errors.As.
type ConfigError struct {
	Key string // the path of the key, e.g. rules[2].match.path_regex
	Err error  // what is wrong with it
}

// Error is the key and the problem: "rules[2].action: …".
func (e *ConfigError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ConfigError) Unwrap() error { return e.Err }

// ruleError is a ConfigError about key (empty: the whole rule) of rules[i].
func ruleError(i int, key string, format string, a ...any) error {
	k := fmt.Sprintf("rules[%d]", i)
	if key != "" {
		k += "." + key
	}
	return &ConfigError{Key: k, Err: fmt.Errorf(format, a...)}
}

// providerError is a ConfigError about providers[i].
func providerError(i int, format string, a ...any) error {
	return &ConfigError{Key: fmt.Sprintf("providers[%d]", i), Err: fmt.Errorf(format, a...)}
}
