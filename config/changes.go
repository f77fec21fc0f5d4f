package config

import (
	"maps"
	"slices"
)

// Values returns the effective value of every key Load read, by key name
// ("flush-interval", "filter.<name>.drop-metric", ...), each as a canonical
// string: two loads that give a key the same value give it the same string
// however it was written ("10s" and "10000ms"). Secrets are included; log
// key names, not these values. The map is a copy.
func (c *Config) Values() map[string]string { return maps.Clone(c.values) }

// ChangedKeys returns, sorted, the keys whose effective values differ
// between old and new, including keys only one of them has (a [filter.<name>]
// section added or removed). A value derived from another key (backend-timeout
// = flush-interval when unset) is not a change of the deriving key: only
// flush-interval is listed.
func ChangedKeys(old, new *Config) []string { return Changed(old.values, new.values) }

// Changed is ChangedKeys on two maps from Values.
func Changed(old, new map[string]string) []string {
	var out []string
	for k, v := range old {
		if nv, ok := new[k]; !ok || nv != v {
			out = append(out, k)
		}
	}
	for k := range new {
		if _, ok := old[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
