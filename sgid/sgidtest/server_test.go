package sgidtest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestNewServerValidatesOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"unknown persona", Options{Persona: "nobody"}},
		{"unknown profile", Options{Profile: 7}},
		{"relative redirect uri", Options{Client: Client{RedirectURIs: []string{"/callback"}}}},
		{"redirect uri with fragment", Options{Client: Client{RedirectURIs: []string{"https://app.test/cb#x"}}}},
		{"scopes without openid", Options{Client: Client{Scopes: []string{"myinfo.name"}}}},
		{"public url with a path", Options{PublicURL: "http://localhost:9000/sgid"}},
		{"negative ttl", Options{CodeTTL: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewUnstartedServer(tc.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	s := Start(t, Options{})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/v2/nothing", 404},
		{"GET", "/oauth/authorize", 404},
		{"GET", "/v2/oauth/token", 405},
		{"POST", "/v2/oauth/authorize", 405},
		{"DELETE", "/v2/.well-known/jwks.json", 405},
		{"POST", "/v2/oauth/userinfo", 405},
		{"GET", "/v2/.well-known/jwks.json", 200},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, s.URL()+tc.path, nil)
		if r := do(t, req); r.StatusCode != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, r.StatusCode, tc.want)
		}
	}
	// Handler serves the same routes without a listener.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v2/.well-known/jwks.json", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), s.SigningKeyIDs()[0]) {
		t.Errorf("Handler: status %d", rec.Code)
	}
}

func TestStartOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewUnstartedServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.StartOn(l)
	defer s.Close()
	if s.URL() != "http://"+l.Addr().String() || s.Issuer() != s.URL()+"/v2" {
		t.Fatalf("URL %q, Issuer %q, listener %s", s.URL(), s.Issuer(), l.Addr())
	}
	tr := login(t, s, "openid")
	if _, err := verifyIDToken(t, s, tr.IDToken); err != nil {
		t.Error(err)
	}
}

func TestPublicURL(t *testing.T) {
	s := Start(t, Options{PublicURL: "https://sgid.demo.test/"})
	if s.URL() != "https://sgid.demo.test" || s.Issuer() != "https://sgid.demo.test/v2" {
		t.Errorf("URL %q, Issuer %q", s.URL(), s.Issuer())
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v2/.well-known/openid-configuration", nil))
	if !strings.Contains(rec.Body.String(), `"issuer":"https://sgid.demo.test/v2"`) {
		t.Errorf("discovery: %s", rec.Body)
	}
}

func TestConcurrentLogins(t *testing.T) {
	s := Start(t, Options{Profile: ProfileObserved})
	var wg sync.WaitGroup
	for i := range 6 {
		// t.Run, because a test may only fail fatally in its own goroutine.
		wg.Go(func() {
			t.Run(fmt.Sprintf("client%d", i), func(t *testing.T) { loginLoop(t, s, i) })
		})
	}
	wg.Wait()
	if n := s.Requests(EndpointToken); n != 18 {
		t.Errorf("Requests(token) = %d, want 18", n)
	}
	if s.HandlerTime() <= 0 {
		t.Error("HandlerTime did not grow")
	}
}

func loginLoop(t *testing.T, s *Server, i int) {
	for j := range 3 {
		if i == 0 && j == 1 {
			s.SetProfile(ProfileSDK)
			s.SetFaults(Faults{})
		}
		tr := login(t, s, "openid myinfo.name myinfo.registered_address")
		got := decryptUserInfo(t, fetchUserInfo(t, s, tr.AccessToken), s.ClientKey())
		if got["myinfo.registered_address"] != Personas()[0].Data["myinfo.registered_address"] {
			t.Errorf("address %q", got["myinfo.registered_address"])
		}
	}
}

// fatalRecorder is a testing.TB whose Fatalf is recorded instead of failing
// the test that runs it.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartFailsTheTestOnBadOptions(t *testing.T) {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r, Options{Persona: "nobody"})
		t.Error("Start returned after bad options")
	}()
	<-done
	if !strings.Contains(r.fatal, `unknown persona "nobody"`) {
		t.Errorf("Start failed the test with %q, want the option's error", r.fatal)
	}
}

func TestStartClosesTheServerWhenTheTestEnds(t *testing.T) {
	var s *Server
	t.Run("user", func(t *testing.T) {
		s = Start(t, Options{})
		if r := get(t, s.Issuer()+"/.well-known/jwks.json", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("jwks: status %d", r.StatusCode)
		}
	})
	if resp, err := httpClient.Get(s.Issuer() + "/.well-known/jwks.json"); err == nil {
		resp.Body.Close()
		t.Error("the server still answers after its test ended")
	}
}
