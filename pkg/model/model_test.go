package model

import "testing"

// TestEnumNames: each priority and alert type has its DogStatsD name and
// parses back from it; other names are refused, and a value out of range
// prints as the zero value.
func TestEnumNames(t *testing.T) {
	for _, tc := range []struct {
		p    Priority
		want string
	}{{PriorityNormal, "normal"}, {PriorityLow, "low"}, {Priority(7), "normal"}} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Priority(%d).String() = %q, want %q", tc.p, got, tc.want)
		}
		if got, ok := ParsePriority(tc.want); !ok || got.String() != tc.want {
			t.Errorf("ParsePriority(%q) = %v, %v; want %q, true", tc.want, got, ok, tc.want)
		}
	}
	for _, tc := range []struct {
		a    AlertType
		want string
	}{{AlertInfo, "info"}, {AlertWarning, "warning"}, {AlertError, "error"}, {AlertSuccess, "success"}, {AlertType(9), "info"}} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("AlertType(%d).String() = %q, want %q", tc.a, got, tc.want)
		}
		if got, ok := ParseAlertType(tc.want); !ok || got.String() != tc.want {
			t.Errorf("ParseAlertType(%q) = %v, %v; want %q, true", tc.want, got, ok, tc.want)
		}
	}
	for _, s := range []string{"", "urgent", "Low", "normal ", "info"} {
		if p, ok := ParsePriority(s); ok {
			t.Errorf("ParsePriority(%q) = %v, true; want false", s, p)
		}
	}
	for _, s := range []string{"", "test", "Error", "warn", "low"} {
		if a, ok := ParseAlertType(s); ok {
			t.Errorf("ParseAlertType(%q) = %v, true; want false", s, a)
		}
	}
}
