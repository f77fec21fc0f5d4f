package mapping

import (
	"strings"
	"sync"
)

// template is a glob mapping's name or label template, split at its
// capture references: literal parts[0], capture refs[0], parts[1], ...
type template struct {
	parts []string
	refs  []int // capture index from 0; -1 = a reference that expands to ""
}

// parseTemplate splits s at every $ followed by an optional "{", a run of
// [a-zA-Z0-9_$] and an optional "}" (statsd_exporter's grammar). A run that
// is a number from 1 to captures refers to that capture; any other run
// expands to "".
func parseTemplate(s string, captures int) template {
	var t template
	lit := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		j := i + 1
		if j < len(s) && s[j] == '{' {
			j++
		}
		start := j
		for j < len(s) && (validNameByte(s[j]) || s[j] == '$') {
			j++
		}
		if j == start {
			continue // a lone "$" is a literal
		}
		ref := atoi(s[start:j])
		if j < len(s) && s[j] == '}' {
			j++
		}
		if ref < 1 || ref > captures {
			ref = 0
		}
		t.parts = append(t.parts, s[lit:i])
		t.refs = append(t.refs, ref-1)
		lit = j
		i = j - 1
	}
	t.parts = append(t.parts, s[lit:])
	return t
}

// atoi is a plain decimal number of at most 6 digits, else -1.
func atoi(s string) int {
	if len(s) == 0 || len(s) > 6 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func (t template) expand(caps []string) string {
	if len(t.refs) == 0 {
		return t.parts[0]
	}
	var b strings.Builder
	for i, ref := range t.refs {
		b.WriteString(t.parts[i])
		if ref >= 0 && ref < len(caps) {
			b.WriteString(caps[ref])
		}
	}
	b.WriteString(t.parts[len(t.parts)-1])
	return b.String()
}

// globTree holds the glob mappings as one tree of components per metric
// type (statsd_exporter's FSM): a node's children are the literal
// components and "*" that can follow it.
type globTree struct {
	roots            [numTypes]*globNode // AnyType unused
	orderingDisabled bool
	empty            bool
}

type globNode struct {
	lit    map[string]*globNode
	star   *globNode
	result int // index of the first mapping ending here, plus one; 0 = none
	mp     *Mapping
}

func newGlobTree(orderingDisabled bool) *globTree {
	t := &globTree{orderingDisabled: orderingDisabled, empty: true}
	for i := Counter; i < numTypes; i++ {
		t.roots[i] = &globNode{}
	}
	return t
}

func (t *globTree) add(mp *Mapping, index int) {
	t.empty = false
	for typ := Counter; typ < numTypes; typ++ {
		if mp.MatchMetricType != AnyType && mp.MatchMetricType != typ {
			continue
		}
		n := t.roots[typ]
		for _, f := range strings.Split(mp.Match, ".") {
			var next *globNode
			if f == "*" {
				if n.star == nil {
					n.star = &globNode{}
				}
				next = n.star
			} else {
				if n.lit == nil {
					n.lit = make(map[string]*globNode)
				}
				if next = n.lit[f]; next == nil {
					next = &globNode{}
					n.lit[f] = next
				}
			}
			n = next
		}
		if n.result == 0 { // the same match twice: the first wins
			n.result, n.mp = index+1, mp
		}
	}
}

// searches holds the buffers of match: on the stack they escaped (walk
// is recursive), 2.9 KB allocated per name matched.
var searches = sync.Pool{New: func() any { return new(search) }}

// match finds the glob mapping for name and returns it with its captures.
func (t *globTree) match(name string, typ MetricType) (*Mapping, []string, bool) {
	if t.empty || typ <= AnyType || typ >= numTypes {
		return nil, nil, false
	}
	s := searches.Get().(*search)
	defer func() {
		clear(s.fields) // keep no piece of name
		clear(s.best)
		*s = search{fields: s.fields[:0], caps: s.caps[:0], best: s.best[:0]}
		searches.Put(s)
	}()
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			s.fields = append(s.fields, rest)
			break
		}
		s.fields = append(s.fields, rest[:i])
		rest = rest[i+1:]
	}
	s.ordered = !t.orderingDisabled
	s.walk(t.roots[typ], 0)
	if s.found == nil {
		return nil, nil, false
	}
	return s.found.mp, append([]string(nil), s.best...), true
}

type search struct {
	fields     []string
	ordered    bool
	caps, best []string
	found      *globNode
}

// walk goes depth first, literal before "*". Ordered, it visits every
// match and keeps the first in the file; unordered, it stops at the first
// it reaches. It reports whether to stop.
func (s *search) walk(n *globNode, depth int) bool {
	if depth == len(s.fields) {
		if n.result == 0 || s.found != nil && s.found.result <= n.result {
			return false
		}
		s.found = n
		s.best = append(s.best[:0], s.caps...)
		return !s.ordered
	}
	f := s.fields[depth]
	if next := n.lit[f]; next != nil && s.walk(next, depth+1) {
		return true
	}
	if n.star != nil {
		s.caps = append(s.caps, f)
		stop := s.walk(n.star, depth+1)
		s.caps = s.caps[:len(s.caps)-1]
		return stop
	}
	return false
}
