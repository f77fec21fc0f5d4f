package filter

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Matcher tests one string (a metric name or a tag) the way gostatsd's
// filters do:
//
//	abc          exactly "abc" (case sensitive)
//	abc*         any string that starts with "abc" (a prefix, not a wildcard)
//	!abc, !abc*  the negation of the above
//	regex:<RE2>  any string the regular expression matches somewhere
//	             (unanchored, as gostatsd; write ^...$ to match the whole)
//	!regex:<RE2> the negation
//
// The zero Matcher matches only the empty string. A Matcher is immutable and
// safe for concurrent use; Match does not allocate.
type Matcher struct {
	s      string
	prefix bool
	invert bool
	re     *regex
}

// regex is a compiled regular expression with a cheap pre-check: when it
// is anchored at the start (^...) with a literal prefix, a string without
// that prefix cannot match and the regexp machine is not run.
type regex struct {
	*regexp.Regexp
	prefix string // non-empty only when anchored
}

func compileRegex(expr string) (*regex, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	r := &regex{Regexp: re}
	if p, _ := re.LiteralPrefix(); p != "" {
		if syn, err := syntax.Parse(expr, syntax.Perl); err == nil {
			if prog, err := syntax.Compile(syn.Simplify()); err == nil && prog.StartCond()&syntax.EmptyBeginText != 0 {
				r.prefix = p
			}
		}
	}
	return r, nil
}

// mayMatch is false when b cannot match (see regex).
func (r *regex) mayMatch(b []byte) bool {
	return len(b) >= len(r.prefix) && string(b[:len(r.prefix)]) == r.prefix
}

// NewMatcher compiles s. It fails only on an invalid regular expression.
func NewMatcher(s string) (Matcher, error) {
	m := Matcher{}
	if strings.HasPrefix(s, "!") {
		m.invert = true
		s = s[1:]
	}
	switch {
	case strings.HasPrefix(s, "regex:"):
		re, err := compileRegex(s[len("regex:"):])
		if err != nil {
			return Matcher{}, fmt.Errorf("invalid regular expression %q: %w", s[len("regex:"):], err)
		}
		m.re = re
	case strings.HasSuffix(s, "*"):
		m.prefix = true
		s = s[:len(s)-1]
	}
	m.s = s
	return m, nil
}

// Match reports whether b matches.
func (m *Matcher) Match(b []byte) bool {
	var ok bool
	switch {
	case m.re != nil:
		ok = m.re.mayMatch(b) && m.re.Match(b)
	case m.prefix:
		ok = len(b) >= len(m.s) && string(b[:len(m.s)]) == m.s
	default:
		ok = string(b) == m.s
	}
	return ok != m.invert
}

// String returns the matcher as it was written.
func (m *Matcher) String() string {
	var b strings.Builder
	if m.invert {
		b.WriteByte('!')
	}
	switch {
	case m.re != nil:
		b.WriteString("regex:")
		b.WriteString(m.re.String())
	case m.prefix:
		b.WriteString(m.s)
		b.WriteByte('*')
	default:
		b.WriteString(m.s)
	}
	return b.String()
}

// List is a list of matchers.
type List []Matcher

// NewList compiles every matcher of ss.
func NewList(ss []string) (List, error) {
	var l List
	for _, s := range ss {
		m, err := NewMatcher(s)
		if err != nil {
			return nil, err
		}
		l = append(l, m)
	}
	return l, nil
}

// MatchAny reports whether any matcher matches b; false for an empty list.
func (l List) MatchAny(b []byte) bool {
	for i := range l {
		if l[i].Match(b) {
			return true
		}
	}
	return false
}

// matchAnyOf reports whether any matcher matches any of bs; false when
// either is empty.
func (l List) matchAnyOf(bs [][]byte) bool {
	for _, b := range bs {
		if l.MatchAny(b) {
			return true
		}
	}
	return false
}
