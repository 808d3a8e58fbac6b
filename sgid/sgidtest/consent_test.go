package sgidtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// authURL is an authorization URL as a relying party builds it.
func authURL(s *Server, q url.Values) string {
	return s.Issuer() + "/oauth/authorize?" + q.Encode()
}

// callbackQuery parses a callback URL Authorize or Cancel returned, failing
// unless it leads to testRedirect.
func callbackQuery(t *testing.T, callback string) url.Values {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != testRedirect {
		t.Fatalf("callback %q, want one to %s", callback, testRedirect)
	}
	return u.Query()
}

func TestAuthorizeLogsInAsThePersonaWithOrWithoutTheChooser(t *testing.T) {
	for _, chooser := range []bool{false, true} {
		s := Start(t, Options{Chooser: chooser, Persona: "nur-aisyah"})
		for _, tc := range []struct{ persona, want string }{
			{"lee-jun-wei", "lee-jun-wei"},
			{"", "nur-aisyah"}, // the persona automatic consent picks
		} {
			p := newPKCE()
			before := s.Requests(EndpointAuthorize)
			callback, err := s.Authorize(t.Context(), authURL(s, authorizeQuery(s, "openid", p)), tc.persona)
			if err != nil {
				t.Fatalf("chooser %t, persona %q: %v", chooser, tc.persona, err)
			}
			q := callbackQuery(t, callback)
			if q.Get("state") != "state-123" || q.Get("code") == "" {
				t.Fatalf("chooser %t, persona %q: callback query %v, want a code and the state", chooser, tc.persona, q)
			}
			if n := s.Requests(EndpointAuthorize) - before; n != 1 {
				t.Errorf("chooser %t: %d authorize requests, want 1", chooser, n)
			}
			tok := postToken(t, s, tokenForm(s, q.Get("code"), p))
			if tok.StatusCode != http.StatusOK {
				t.Fatalf("token: status %d: %s", tok.StatusCode, tok.body)
			}
			var tr tokenResponse
			mustUnmarshal(t, tok.body, &tr)
			if _, claims := unverifiedClaims(t, tr.IDToken); claims["sub"] != PairwiseSub(s.ClientID(), tc.want) {
				t.Errorf("chooser %t, persona %q: logged in as sub %v, want %s's", chooser, tc.persona, claims["sub"], tc.want)
			}
		}
	}
}

func TestCancelIsAccessDeniedWithOrWithoutTheChooser(t *testing.T) {
	for _, chooser := range []bool{false, true} {
		s := Start(t, Options{Chooser: chooser})
		callback, err := s.Cancel(t.Context(), authURL(s, authorizeQuery(s, "openid", newPKCE())))
		if err != nil {
			t.Fatalf("chooser %t: %v", chooser, err)
		}
		q := callbackQuery(t, callback)
		if q.Get("error") != "access_denied" || q.Get("error_description") == "" || q.Get("state") != "state-123" || q.Get("code") != "" {
			t.Errorf("chooser %t: callback query %v, want access_denied with the state and no code", chooser, q)
		}
	}
}

func TestAuthorizePassesTheAuthorizeEndpointsChecks(t *testing.T) {
	s := Start(t, Options{Client: Client{RedirectURIs: []string{testRedirect}}})
	tests := []struct {
		name   string
		change func(q url.Values)
		// wantErr: a part of Authorize's error when sgID shows a page;
		// otherwise the OAuth error on the callback.
		wantErr, wantCallbackErr string
	}{
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.test/callback") }, "400, not a redirect to the client: redirect_uri is missing or not registered", ""},
		{"unknown client_id", func(q url.Values) { q.Set("client_id", "someone-else") }, "client_id is not a registered client", ""},
		{"unknown scope", func(q url.Values) { q.Set("scope", "openid myinfo.shoe_size") }, "", "invalid_scope"},
		{"plain code_challenge_method", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "", "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name, answer := range map[string]func(string) (string, error){
				"Authorize": func(u string) (string, error) { return s.Authorize(t.Context(), u, "tan-ah-kow") },
				"Cancel":    func(u string) (string, error) { return s.Cancel(t.Context(), u) },
			} {
				q := authorizeQuery(s, "openid", newPKCE())
				tc.change(q)
				callback, err := answer(authURL(s, q))
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) || callback != "" {
						t.Errorf("%s: %q, %v; want no callback and an error with %q", name, callback, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if cq := callbackQuery(t, callback); cq.Get("error") != tc.wantCallbackErr || cq.Get("code") != "" || cq.Get("state") != "state-123" {
					t.Errorf("%s: callback query %v, want error=%s with the state", name, cq, tc.wantCallbackErr)
				}
			}
		})
	}
}

func TestAuthorizeRefusesWithoutAskingTheServer(t *testing.T) {
	s := Start(t, Options{})
	good := authURL(s, authorizeQuery(s, "openid", newPKCE()))
	tests := []struct{ name, authURL, persona string }{
		{"unknown persona", good, "nobody"},
		{"another server", strings.Replace(good, s.URL(), "http://sgid.invalid", 1), "tan-ah-kow"},
		{"another endpoint", strings.Replace(good, "/oauth/authorize", "/oauth/token", 1), "tan-ah-kow"},
		{"not a url", "http://%zz", "tan-ah-kow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if callback, err := s.Authorize(t.Context(), tc.authURL, tc.persona); err == nil || callback != "" {
				t.Errorf("Authorize: %q, %v; want an error", callback, err)
			}
		})
	}
	if n := s.Requests(EndpointAuthorize); n != 0 {
		t.Errorf("%d authorize requests, want none", n)
	}
}

func TestAuthorizeMeetsTheFaultsOnAuthorize(t *testing.T) {
	s := Start(t, Options{})
	u := authURL(s, authorizeQuery(s, "openid", newPKCE()))

	s.SetFaults(Faults{Status: map[Endpoint]int{EndpointAuthorize: http.StatusServiceUnavailable}})
	if _, err := s.Authorize(t.Context(), u, ""); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("injected 503: error %v, want one with the status", err)
	}

	s.SetFaults(Faults{Delay: map[Endpoint]time.Duration{EndpointAuthorize: time.Hour}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Cancel(ctx, u); err == nil {
		t.Error("an authorize request delayed by an hour answered within 100ms")
	}
}

func TestAuthorizeReachesAServerBehindAPublicURL(t *testing.T) {
	s := Start(t, Options{PublicURL: "https://sgid.invalid"})
	callback, err := s.Authorize(t.Context(), authURL(s, authorizeQuery(s, "openid", newPKCE())), "")
	if err != nil {
		t.Fatal(err)
	}
	if q := callbackQuery(t, callback); q.Get("code") == "" {
		t.Errorf("callback query %v, want a code", q)
	}
}

func TestConsentHeaderWithAnUnknownPersonaIsAnErrorPage(t *testing.T) {
	s := Start(t, Options{})
	r := get(t, authURL(s, authorizeQuery(s, "openid", newPKCE())), http.Header{consentHeader: {"persona=nobody"}})
	if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" || r.Header.Get(errorHeader) != "unknown persona" {
		t.Errorf("status %d, Location %q, %s %q; want 400, no redirect, unknown persona",
			r.StatusCode, r.Header.Get("Location"), errorHeader, r.Header.Get(errorHeader))
	}
}
