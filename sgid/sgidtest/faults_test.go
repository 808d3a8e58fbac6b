package sgidtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestTransportFaults(t *testing.T) {
	s := Start(t, Options{})
	tr := login(t, s, "openid myinfo.name")
	requests := map[Endpoint]func() *http.Request{
		EndpointAuthorize: func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, s.Issuer()+"/oauth/authorize?"+authorizeQuery(s, "openid", newPKCE()).Encode(), nil)
			return req
		},
		EndpointToken: func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, s.Issuer()+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		},
		EndpointUserInfo: func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, s.Issuer()+"/oauth/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
			return req
		},
		EndpointJWKS: func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, s.Issuer()+"/.well-known/jwks.json", nil)
			return req
		},
		EndpointDiscovery: func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, s.Issuer()+"/.well-known/openid-configuration", nil)
			return req
		},
	}
	const big = 3 << 20
	tests := []struct {
		name   string
		faults func(e Endpoint) Faults
		check  func(t *testing.T, r result)
	}{
		{"Status", func(e Endpoint) Faults { return Faults{Status: map[Endpoint]int{e: 503}} }, func(t *testing.T, r result) {
			if r.StatusCode != 503 || !json.Valid(r.body) || len(r.body) > 512 {
				t.Errorf("status %d, body %.100s", r.StatusCode, r.body)
			}
		}},
		{"Malformed", func(e Endpoint) Faults { return Faults{Malformed: map[Endpoint]bool{e: true}} }, func(t *testing.T, r result) {
			if r.StatusCode != 200 || json.Valid(r.body) {
				t.Errorf("status %d, body %.100s: want 200 and invalid JSON", r.StatusCode, r.body)
			}
		}},
		{"Oversized", func(e Endpoint) Faults { return Faults{Oversized: map[Endpoint]int{e: big}} }, func(t *testing.T, r result) {
			if r.StatusCode != 200 || len(r.body) < big || !json.Valid(r.body) || r.ContentLength != -1 {
				t.Errorf("status %d, %d bytes, content length %d: want 200, >= %d bytes of valid JSON, streamed", r.StatusCode, len(r.body), r.ContentLength, big)
			}
		}},
	}
	for _, tc := range tests {
		for _, e := range endpoints {
			t.Run(tc.name+"/"+string(e), func(t *testing.T) {
				s.SetFaults(tc.faults(e))
				defer s.SetFaults(Faults{})
				tc.check(t, do(t, requests[e]()))
				// Other endpoints are untouched.
				other := EndpointDiscovery
				if e == other {
					other = EndpointJWKS
				}
				if r := do(t, requests[other]()); r.StatusCode != 200 || !json.Valid(r.body) {
					t.Errorf("%s with a fault on %s: status %d", other, e, r.StatusCode)
				}
			})
		}
	}
}

func TestDelayIsExcludedFromHandlerTime(t *testing.T) {
	s := Start(t, Options{})
	const delay = 300 * time.Millisecond
	s.SetFaults(Faults{Delay: map[Endpoint]time.Duration{EndpointJWKS: delay}})
	before, handlerBefore := s.Requests(EndpointJWKS), s.HandlerTime()
	start := time.Now()
	fetchJWKS(t, s)
	if took := time.Since(start); took < delay {
		t.Errorf("answered after %v, want at least %v", took, delay)
	}
	if got := s.HandlerTime() - handlerBefore; got <= 0 || got > delay/2 {
		t.Errorf("HandlerTime grew by %v: want the handler's own time, without the %v delay", got, delay)
	}
	if got := s.Requests(EndpointJWKS) - before; got != 1 {
		t.Errorf("Requests(jwks) grew by %d, want 1", got)
	}
	if s.Requests(EndpointToken) != 0 || s.Requests("nonsense") != 0 {
		t.Error("requests counted on the wrong endpoint")
	}
}

func TestDelayEndsWhenClientGoesAwayOrServerCloses(t *testing.T) {
	s := Start(t, Options{}) // closed below, before the cleanup
	s.SetFaults(Faults{Delay: map[Endpoint]time.Duration{EndpointJWKS: time.Hour, EndpointDiscovery: time.Hour}})

	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := impatient.Get(s.Issuer() + "/.well-known/openid-configuration"); err == nil {
		t.Error("a request delayed by an hour succeeded within 100ms")
	}

	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.Issuer() + "/.well-known/jwks.json")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	for s.Requests(EndpointJWKS) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a delayed request")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("delayed request still pending after Close")
	}
}

func TestDelayOnAPostEndsWhenClientGoesAway(t *testing.T) {
	// net/http notices a client going away only once the request body is
	// read; the token endpoint is a POST.
	s := Start(t, Options{})
	s.SetFaults(Faults{Delay: map[Endpoint]time.Duration{EndpointToken: time.Hour}})
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := impatient.PostForm(s.Issuer()+"/oauth/token", url.Values{"grant_type": {"authorization_code"}}); err == nil {
		t.Fatal("a token request delayed by an hour succeeded within 100ms")
	}
	// Before the cleanup's Close, which would end the delay too.
	for deadline := time.Now().Add(5 * time.Second); delayedHandlers() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delay went on for 5s after the client went away")
		}
	}
}

// delayedHandlers counts the goroutines sleeping in an injected delay.
func delayedHandlers() int {
	buf := make([]byte, 1<<20)
	for runtime.Stack(buf, true) == len(buf) {
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, []byte("sgidtest.(*Server).applyTransportFaults("))
}

func TestFaultsAreCopied(t *testing.T) {
	s := Start(t, Options{})
	f := Faults{Status: map[Endpoint]int{EndpointJWKS: 500}}
	s.SetFaults(f)
	f.Status[EndpointJWKS] = 0 // must not reach the server
	if r := get(t, s.Issuer()+"/.well-known/jwks.json", nil); r.StatusCode != 500 {
		t.Errorf("status %d after the caller changed its map; SetFaults must copy", r.StatusCode)
	}
}
