package sgid_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

type observed struct {
	endpoint string
	d        time.Duration
	err      error
}

// recorder collects Observe calls; logins may call it from several goroutines.
type recorder struct {
	mu    sync.Mutex
	calls []observed
}

func (r *recorder) observe(endpoint string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, observed{endpoint, d, err})
}

func (r *recorder) endpoints() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, c.endpoint)
	}
	return out
}

func TestObserveSeesEveryCallToSgIDWithItsOutcome(t *testing.T) {
	tests := []struct {
		name    string
		faults  sgidtest.Faults
		want    []string // endpoints: token first, the rest in any order (jwks and userinfo run at once)
		wantErr map[string]error
	}{
		{
			name: "a login calls token, jwks (first ID token) and userinfo",
			want: []string{"token", "jwks", "userinfo"}, // sorted after token
		},
		{
			name:    "userinfo answering 503 is observed as unavailable",
			faults:  sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 503}},
			want:    []string{"token", "jwks", "userinfo"},
			wantErr: map[string]error{"userinfo": sgid.ErrUnavailable},
		},
		{
			name:    "an oversized token answer is observed as a bad response",
			faults:  sgidtest.Faults{Oversized: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 1 << 20}},
			want:    []string{"token"},
			wantErr: map[string]error{"token": sgid.ErrBadResponse},
		},
		{
			// An OAuth error is an answer, not a failed call: the flow reports it.
			name:   "a 400 OAuth error is observed without an error",
			faults: sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointToken: 400}},
			want:   []string{"token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSgID(t, sgidtest.Options{})
			rec := &recorder{}
			c := clientFor(t, srv, nil, func(c *sgid.Config) { c.Observe = rec.observe })
			srv.SetFaults(tt.faults)
			login(t, c) // the outcome is the flow tests' business
			got := rec.endpoints()
			if len(got) > 1 {
				slices.Sort(got[1:])
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("observed %v, want %v", got, tt.want)
			}
			for _, call := range rec.calls {
				want := tt.wantErr[call.endpoint]
				switch {
				case want == nil && call.err != nil:
					t.Errorf("%s: observed error %v, want none", call.endpoint, call.err)
				case want != nil && !errors.Is(call.err, want):
					t.Errorf("%s: observed error %v, want %v", call.endpoint, call.err, want)
				}
				if call.d <= 0 {
					t.Errorf("%s: duration %s, want > 0", call.endpoint, call.d)
				}
			}
		})
	}
}
