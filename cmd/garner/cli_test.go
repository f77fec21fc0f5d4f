package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/garnertest"
)

// TestE2ECheckConfig: --check-config validates what a start would (keys,
// values, filters, backends' and the forwarder's settings), prints "ok" or
// the one thing wrong, exits 0 or 2, and binds no port: the admin and statsd
// addresses given are held by this test all along.
func TestE2ECheckConfig(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	ports := []string{"--admin-addr=" + addr, "--metrics-addr=" + addr, "--tcp-metrics-addr=" + addr}
	for _, tc := range []struct {
		name, toml string
		code       int
		want       []string // in the output
	}{
		{"ok", "backends = \"graphite null\"\nflush-interval = \"5s\"\n[graphite]\naddress = \"127.0.0.1:2003\"\n", 0, []string{"ok\n"}},
		{"ok with a warning", "max-parsers = 4\n", 0, []string{`"max-parsers"`, "ok\n"}},
		{"unknown key", "flush-intervall = \"5s\"\n", 2, []string{`garner: config key "flush-intervall": unknown key`}},
		{"bad value", "flush-interval = \"ten\"\n", 2, []string{`garner: config key "flush-interval"`, `"ten" is not a duration`}},
		{"filter without a section", "filters = \"nope\"\n", 2, []string{"garner: ", "nope"}},
		{"backend setting", "backends = \"datadog\"\n", 2, []string{`garner: config key "datadog.api_key": required`}},
		{"syntax error", "flush-interval = \"5s\"\nbackends = \"graphite\n", 2, []string{`garner: config key "config-path": `, ".toml:2:21: TOML: basic strings cannot have new lines"}},
		{"forwarder setting", "server-mode = \"forwarder\"\n", 2, []string{"garner: ", "http-transport.api-endpoint"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := garnertest.Start(t, append([]string{"--check-config", "--config-path", garnertest.WriteConfig(t, tc.toml)}, ports...)...)
			code := p.Wait(30 * time.Second)
			out := p.Stdout() + p.Stderr()
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.code == 0 && !strings.HasSuffix(p.Stdout(), "ok\n") {
				t.Errorf("stdout does not end in ok:\n%s", p.Stdout())
			}
			if strings.Contains(out, "listening") || strings.Contains(out, "garner started") {
				t.Errorf("--check-config started garner:\n%s", out)
			}
		})
	}
}

// TestE2EHelp: --help shows each flag's kind and one default.
func TestE2EHelp(t *testing.T) {
	p := garnertest.Start(t, "--help")
	if code := p.Wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.Stderr())
	}
	help := p.Stdout() + p.Stderr()
	for _, l := range strings.Split(help, "\n") {
		if strings.Count(l, "(default ") > 1 {
			t.Errorf("two defaults: %s", l)
		}
		if strings.Contains(l, "--") && strings.Contains(l, " string ") && strings.Contains(l, `(default "`) &&
			strings.Trim(l[strings.LastIndex(l, `(default "`)+len(`(default "`):], `")`) != "" &&
			strings.Trim(l[strings.LastIndex(l, `(default "`)+len(`(default "`):], `0123456789")`) == "" {
			t.Errorf("a number shown as a string: %s", l)
		}
	}
	for _, want := range []string{
		"--max-readers integer", "(default min(8, CPUs))", "--max-datagram-size size", "(default 64KiB)",
		"--flush-interval duration", "(default 10s)", "--bad-lines-per-minute number", "--backends list",
		"--log-level string", `(default "info")`, "--check-config",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(help, "max-parsers") {
		t.Error("--help lists the ignored gostatsd flags")
	}
}

// TestE2EStartFailures: every start failure ends in one plain "garner: ..."
// line (no logfmt, no escaped quotes) and the exit code of its class:
// 2 configuration, 3 a listen address that cannot be bound (statsd UDP,
// TCP and admin alike).
func TestE2EStartFailures(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0") // no SO_REUSEPORT: garner cannot join it
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	free := "--metrics-addr=127.0.0.1:0"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad flag value", []string{"--flush-interval=soon", free}, 2, `garner: config key "flush-interval"`},
		{"unknown flag", []string{"--no-such-flag", free}, 2, "garner: unknown flag: --no-such-flag"},
		{"statsd port in use", []string{"--metrics-addr=" + udp.LocalAddr().String(), "--admin-addr=" + garnertest.FreeAddr(t)}, 3, "garner: cannot start receivers"},
		{"tcp port in use", []string{free, "--tcp-metrics-addr=" + tcp.Addr().String(), "--admin-addr=" + garnertest.FreeAddr(t)}, 3, "garner: cannot start receivers"},
		{"admin port in use", []string{free, "--admin-addr=" + tcp.Addr().String()}, 3, `garner: address in use: admin-addr "` + tcp.Addr().String() + `" is taken`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := garnertest.Start(t, append(tc.args, "--backends=null")...)
			code := p.Wait(20 * time.Second)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d\n%s", code, tc.code, p.Stderr())
			}
			lines := strings.Split(strings.TrimSpace(p.Stderr()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, tc.want) {
				t.Errorf("last stderr line %q, want it to start with %q", last, tc.want)
			}
			if strings.Contains(p.Stderr(), "level=error") || strings.Contains(last, `\"`) {
				t.Errorf("the failure is not one plain line:\n%s", p.Stderr())
			}
		})
	}
}

// TestE2EReceiveBufferWarnedOnce: a receive buffer the kernel does not grant
// is one warning for all the sockets, not one per reader. 1GiB is just
// above what Linux grants even to root (INT_MAX/2).
func TestE2EReceiveBufferWarnedOnce(t *testing.T) {
	p := garnertest.StartReady(t, "--metrics-addr=127.0.0.1:0", "--admin-addr=", "--backends=null",
		"--max-readers=4", "--socket-receive-buffer=1GiB")
	p.StopOK(t)
	if n := strings.Count(p.Stderr(), "socket receive buffer is smaller"); n != 1 {
		t.Fatalf("%d receive-buffer warnings, want 1:\n%s", n, p.Stderr())
	}
}
