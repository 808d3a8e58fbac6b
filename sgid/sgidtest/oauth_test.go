package sgidtest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuthorizeRejectsBadRequests(t *testing.T) {
	s := Start(t, Options{Client: Client{
		RedirectURIs: []string{testRedirect, "https://app.test/cb?tenant=a"},
		Scopes:       []string{"openid", "myinfo.name", "myinfo.future_field"},
	}})
	p := newPKCE()
	tests := []struct {
		name   string
		change func(q url.Values)
		// page: 400 HTML without a redirect; otherwise the OAuth error
		// expected on the redirect.
		page    bool
		wantErr string
	}{
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.test/callback") }, true, ""},
		{"redirect_uri differs by a slash", func(q url.Values) { q.Set("redirect_uri", testRedirect+"/") }, true, ""},
		{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }, true, ""},
		{"repeated redirect_uri", func(q url.Values) { q.Add("redirect_uri", testRedirect) }, true, ""},
		{"unknown client_id", func(q url.Values) { q.Set("client_id", "someone-else") }, true, ""},
		{"missing client_id", func(q url.Values) { q.Del("client_id") }, true, ""},
		{"missing code_challenge_method", func(q url.Values) { q.Del("code_challenge_method") }, false, "invalid_request"},
		{"plain code_challenge_method", func(q url.Values) { q.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"missing code_challenge", func(q url.Values) { q.Del("code_challenge") }, false, "invalid_request"},
		{"verifier sent as challenge", func(q url.Values) { q.Set("code_challenge", p.verifier+"xyz") }, false, "invalid_request"},
		{"unknown scope", func(q url.Values) { q.Set("scope", "openid myinfo.name myinfo.shoe_size") }, false, "invalid_scope"},
		{"catalog scope not allowed for client", func(q url.Values) { q.Set("scope", "openid myinfo.email") }, false, "invalid_scope"},
		{"scope without openid", func(q url.Values) { q.Set("scope", "myinfo.name") }, false, "invalid_scope"},
		{"missing scope", func(q url.Values) { q.Del("scope") }, false, "invalid_request"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"missing response_type", func(q url.Values) { q.Del("response_type") }, false, "invalid_request"},
		{"repeated state", func(q url.Values) { q.Add("state", "other") }, false, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeQuery(s, "openid myinfo.name", p)
			tc.change(q)
			resp := authorize(t, s, q)
			if tc.page {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(resp.body), "cannot be served") {
					t.Errorf("want an HTML error page, got %s: %.200s", resp.Header.Get("Content-Type"), resp.body)
				}
				return
			}
			rq := redirectQuery(t, resp)
			if rq.Get("error") != tc.wantErr || rq.Get("error_description") == "" || rq.Get("code") != "" {
				t.Errorf("redirect query %v, want error=%s with a description and no code", rq, tc.wantErr)
			}
			if rq.Get("state") != "state-123" {
				t.Errorf("state %q not echoed on the error redirect", rq.Get("state"))
			}
		})
	}
}

func TestAuthorizeRedirect(t *testing.T) {
	s := Start(t, Options{Client: Client{
		RedirectURIs: []string{testRedirect, "https://app.test/cb?tenant=a&x=1"},
		Scopes:       []string{"openid", "myinfo.name", "myinfo.future_field"},
	}})
	p := newPKCE()

	t.Run("keeps the redirect_uri query", func(t *testing.T) {
		q := authorizeQuery(s, "openid", p)
		q.Set("redirect_uri", "https://app.test/cb?tenant=a&x=1")
		resp := authorize(t, s, q)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		rq := redirectQuery(t, resp)
		if loc.Host != "app.test" || loc.Path != "/cb" || rq.Get("tenant") != "a" || rq.Get("x") != "1" || rq.Get("code") == "" {
			t.Errorf("Location %s: want https://app.test/cb with tenant, x and code", loc)
		}
	})
	t.Run("omits an absent state", func(t *testing.T) {
		q := authorizeQuery(s, "openid", p)
		q.Del("state")
		rq := redirectQuery(t, authorize(t, s, q))
		if _, ok := rq["state"]; ok || rq.Get("code") == "" {
			t.Errorf("redirect query %v: want a code and no state", rq)
		}
	})
	t.Run("accepts an allowed scope outside the catalog", func(t *testing.T) {
		tr := login(t, s, "openid myinfo.future_field")
		if tr.Scope != "openid myinfo.future_field" {
			t.Errorf("granted scope %q", tr.Scope)
		}
		ui := fetchUserInfo(t, s, tr.AccessToken)
		if got := decryptUserInfo(t, ui, s.ClientKey())["myinfo.future_field"]; got != "NA" {
			t.Errorf("field the persona lacks = %q, want NA", got)
		}
	})
}

func TestTokenRejectsBadRequests(t *testing.T) {
	s := Start(t, Options{})
	tests := []struct {
		name       string
		change     func(form url.Values, req *http.Request)
		wantStatus int
		wantErr    string
	}{
		{"wrong client_secret", func(f url.Values, _ *http.Request) { f.Set("client_secret", "x"+s.ClientSecret()[1:]) }, 401, "invalid_client"},
		{"missing client_secret", func(f url.Values, _ *http.Request) { f.Del("client_secret") }, 401, "invalid_client"},
		{"wrong client_id", func(f url.Values, _ *http.Request) { f.Set("client_id", "other") }, 401, "invalid_client"},
		{"secret in basic auth too", func(_ url.Values, r *http.Request) { r.SetBasicAuth(s.ClientID(), s.ClientSecret()) }, 400, "invalid_request"},
		{"json body", func(_ url.Values, r *http.Request) { r.Header.Set("Content-Type", "application/json") }, 400, "invalid_request"},
		{"refresh grant", func(f url.Values, _ *http.Request) { f.Set("grant_type", "refresh_token") }, 400, "unsupported_grant_type"},
		{"missing grant_type", func(f url.Values, _ *http.Request) { f.Del("grant_type") }, 400, "invalid_request"},
		{"wrong verifier", func(f url.Values, _ *http.Request) { f.Set("code_verifier", newPKCE().verifier) }, 400, "invalid_grant"},
		{"short verifier", func(f url.Values, _ *http.Request) { f.Set("code_verifier", "abc") }, 400, "invalid_grant"},
		{"verifier with bad characters", func(f url.Values, _ *http.Request) { f.Set("code_verifier", strings.Repeat("a+", 30)) }, 400, "invalid_grant"},
		{"missing verifier", func(f url.Values, _ *http.Request) { f.Del("code_verifier") }, 400, "invalid_grant"},
		{"wrong redirect_uri", func(f url.Values, _ *http.Request) { f.Set("redirect_uri", testRedirect+"?x=1") }, 400, "invalid_grant"},
		{"missing redirect_uri", func(f url.Values, _ *http.Request) { f.Del("redirect_uri") }, 400, "invalid_grant"},
		{"unknown code", func(f url.Values, _ *http.Request) { f.Set("code", randomToken(32)) }, 400, "invalid_grant"},
		{"repeated code", func(f url.Values, _ *http.Request) { f.Add("code", "x") }, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKCE()
			form := tokenForm(s, getCode(t, s, authorizeQuery(s, "openid", p)), p)
			req, _ := http.NewRequest(http.MethodPost, s.Issuer()+"/oauth/token", nil)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			tc.change(form, req)
			body := form.Encode()
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			resp := do(t, req)
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			mustUnmarshal(t, resp.body, &e)
			if resp.StatusCode != tc.wantStatus || e.Error != tc.wantErr || e.Description == "" {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, resp.body, tc.wantStatus, tc.wantErr)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	s := Start(t, Options{})

	t.Run("after success", func(t *testing.T) {
		p := newPKCE()
		form := tokenForm(s, getCode(t, s, authorizeQuery(s, "openid", p)), p)
		if resp := postToken(t, s, form); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d %s", resp.StatusCode, resp.body)
		}
		if resp := postToken(t, s, form); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(resp.body), "invalid_grant") {
			t.Errorf("second use: %d %s, want 400 invalid_grant", resp.StatusCode, resp.body)
		}
	})
	t.Run("after a failed use", func(t *testing.T) {
		p := newPKCE()
		form := tokenForm(s, getCode(t, s, authorizeQuery(s, "openid", p)), p)
		bad := tokenForm(s, form.Get("code"), newPKCE())
		if resp := postToken(t, s, bad); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong verifier: status %d", resp.StatusCode)
		}
		if resp := postToken(t, s, form); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("right verifier after a wrong one: %d %s, want 400", resp.StatusCode, resp.body)
		}
	})
}

func TestLifetimes(t *testing.T) {
	c := newClock()
	s := Start(t, Options{Now: c.Now, CodeTTL: time.Minute, TokenTTL: 10 * time.Minute})

	t.Run("code expires after CodeTTL", func(t *testing.T) {
		p := newPKCE()
		form := tokenForm(s, getCode(t, s, authorizeQuery(s, "openid", p)), p)
		c.Advance(time.Minute + time.Second)
		if resp := postToken(t, s, form); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(resp.body), "expired") {
			t.Errorf("expired code: %d %s, want 400 invalid_grant (expired)", resp.StatusCode, resp.body)
		}
	})
	t.Run("access token works until TokenTTL", func(t *testing.T) {
		tr := login(t, s, "openid myinfo.name")
		if tr.ExpiresIn != 600 || tr.TokenType != "Bearer" {
			t.Errorf("expires_in %d, token_type %q", tr.ExpiresIn, tr.TokenType)
		}
		_, claims := unverifiedClaims(t, tr.IDToken)
		if iat, exp := claims["iat"].(float64), claims["exp"].(float64); int64(iat) != c.Now().Unix() || exp-iat != 600 {
			t.Errorf("iat %v exp %v, want iat = server clock and exp = iat + 600", iat, exp)
		}
		fetchUserInfo(t, s, tr.AccessToken)
		c.Advance(9 * time.Minute)
		fetchUserInfo(t, s, tr.AccessToken) // reusable until it expires
		c.Advance(time.Minute)
		resp := get(t, s.Issuer()+"/oauth/userinfo", http.Header{"Authorization": {"Bearer " + tr.AccessToken}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("expired token: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}
