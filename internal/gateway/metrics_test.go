package gateway

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sgidproxy/caddy-sgid/sgid"
)

func TestMetricsFailureReasonOfEachSgIDErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&sgid.OAuthError{Endpoint: "authorize", Code: "access_denied"}, reasonCancelled},
		{fmt.Errorf("%w: state does not match", sgid.ErrBadCallback), reasonBadCallback},
		{&sgid.OAuthError{Endpoint: "token", Status: 400, Code: "invalid_grant"}, reasonInvalidGrant},
		{&sgid.OAuthError{Endpoint: "token", Status: 401, Code: "invalid_client"}, reasonInvalidClient},
		{&sgid.OAuthError{Endpoint: "token", Status: 400, Code: "invalid_request"}, reasonSgidError},
		{&sgid.OAuthError{Endpoint: "authorize", Code: "server_error"}, reasonSgidError},
		{&sgid.UnavailableError{Endpoint: "userinfo", Status: 503}, reasonSgidUnavailable},
		{&sgid.ResponseError{Endpoint: "token", Reason: "body is not valid JSON"}, reasonSgidError},
		{&sgid.IDTokenError{Reason: "nonce mismatch"}, reasonVerificationFailed},
		{sgid.ErrSubMismatch, reasonVerificationFailed},
		{&sgid.DecryptionError{Field: "key"}, reasonVerificationFailed},
	}
	for _, tt := range tests {
		got := callbackOutcome(tt.err).metric
		if got != tt.want {
			t.Errorf("callbackOutcome(%v).metric = %q, want %q", tt.err, got, tt.want)
		}
		if !slices.Contains(failureReasons, got) {
			t.Errorf("%q is not in the fixed set of reasons", got)
		}
	}
}

// gathered returns the value of each series of family name in reg, by label
// value ("" for a series without labels).
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			label := ""
			if l := m.GetLabel(); len(l) > 0 {
				label = l[0].GetValue()
			}
			out[label] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestMetricsRegisterForTwoHandlersAndAcrossReloads(t *testing.T) {
	m := newMetrics()
	config1 := prometheus.NewPedanticRegistry()
	for handler := range 2 {
		if err := m.register(config1); err != nil {
			t.Fatalf("handler %d: %v", handler+1, err)
		}
	}
	m.loginsCompleted.Inc()
	m.loginFailed(reasonCancelled)

	config2 := prometheus.NewPedanticRegistry() // what a reload brings
	if err := m.register(config2); err != nil {
		t.Fatalf("after a reload: %v", err)
	}
	if got := gathered(t, config2, "caddy_sgid_logins_completed_total")[""]; got != 1 {
		t.Errorf("completed after a reload = %v, want 1", got)
	}
	failed := gathered(t, config2, "caddy_sgid_logins_failed_total")
	if len(failed) != len(failureReasons) || failed[reasonCancelled] != 1 || failed[reasonNoAttempt] != 0 {
		t.Errorf("failed by reason = %v, want every reason, cancelled at 1", failed)
	}
}

func TestMetricsClashCostsOnlyTheClashingMetric(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_sgid_logins_started_total", Help: "someone else's"}))
	m := newMetrics()
	if err := m.register(reg); err == nil {
		t.Fatal("a clash with another collector was not reported")
	}
	m.loginsCompleted.Inc()
	if got := gathered(t, reg, "caddy_sgid_logins_completed_total")[""]; got != 1 {
		t.Errorf("the other metrics are not registered: completed = %v", got)
	}
}
