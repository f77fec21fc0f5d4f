package config

import (
	"maps"
	"slices"
	"strings"
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

// Changed is ChangedKeys on two maps from Values. A section that only one
// of them has ([filter.<name>] added or removed) is named once, as
// "filter.<name>", not key by key.
func Changed(old, new map[string]string) []string {
	seen := map[string]bool{}
	add := func(k string) { seen[k] = true }
	for k, v := range old {
		if nv, ok := new[k]; !ok {
			add(wholeSection(k, old, new))
		} else if nv != v {
			add(k)
		}
	}
	for k := range new {
		if _, ok := old[k]; !ok {
			add(wholeSection(k, new, old))
		}
	}
	out := slices.Collect(maps.Keys(seen))
	slices.Sort(out)
	return out
}

// wholeSection returns key's section ("filter.a" for "filter.a.drop-metric",
// a key of own) when own holds several keys of that section and other none,
// else key (a header added to [prometheus.headers] is named as itself).
func wholeSection(key string, own, other map[string]string) string {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return key
	}
	prefix := key[:i+1]
	n := 0
	for k := range own {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	for k := range other {
		if strings.HasPrefix(k, prefix) {
			return key
		}
	}
	if n < 2 {
		return key
	}
	return key[:i]
}
