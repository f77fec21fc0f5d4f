package logaddr

import "testing"

func TestFind(t *testing.T) {
	logs := `time="2026-12-02T18:32:41Z" level=info msg="listening for statsd on udp" address="127.0.0.1:33485" readers=2
time="2026-12-02T18:32:41Z" level=info msg="serving http" address="127.0.0.1:9" component=http http_server=lb
time="2026-12-02T18:32:41Z" level=info msg="serving http" address="127.0.0.1:41207" component=http http_server=admin
time="2026-12-02T18:32:41Z" level=info msg="listening for statsd on tcp" address="[::1]:8125"
`
	tests := []struct {
		name, msg string
		fields    []string
		want      string
	}{
		{"udp", "listening for statsd on udp", nil, "127.0.0.1:33485"},
		{"ipv6", "listening for statsd on tcp", nil, "[::1]:8125"},
		{"first match", "serving http", nil, "127.0.0.1:9"},
		{"field picks the line", "serving http", []string{"http_server=admin"}, "127.0.0.1:41207"},
		{"absent", "listening for statsd on unix datagram socket", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Find(logs, tc.msg, tc.fields...); got != tc.want {
				t.Fatalf("Find(%q, %v) = %q, want %q", tc.msg, tc.fields, got, tc.want)
			}
		})
	}
}
