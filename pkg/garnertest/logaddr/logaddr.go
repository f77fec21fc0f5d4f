// Package logaddr finds the addresses garner logs when it binds a listener
// (`msg="listening for statsd on udp" address="127.0.0.1:41207"`), so a
// caller can start garner on port 0 and learn the port it got. It has no
// test dependencies: garner-load uses it too.
package logaddr

import (
	"regexp"
	"strings"
)

var addressField = regexp.MustCompile(`address="?([^" ]+)"?`)

// Find returns the address field of the first line of garner's text log
// with message msg and every one of the key=value fields, or "" when there
// is none yet.
func Find(logs, msg string, fields ...string) string {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="`+msg+`"`) {
			continue
		}
		ok := true
		for _, f := range fields {
			ok = ok && strings.Contains(line, " "+f)
		}
		if m := addressField.FindStringSubmatch(line); ok && m != nil {
			return m[1]
		}
	}
	return ""
}
