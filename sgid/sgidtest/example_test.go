package sgidtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// A test configures the client under test from the server, logs in, then
// breaks the server on purpose to see the client refuse. (A test starts the
// server with sgidtest.Start(t, opts); an example has no t.)
func Example() {
	s, err := sgidtest.NewServer(sgidtest.Options{
		Client:  sgidtest.Client{RedirectURIs: []string{"https://app.test/callback"}},
		Profile: sgidtest.ProfileObserved,
		Persona: "maria-dela-cruz",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	// The client's configuration: hostname s.URL(), client ID s.ClientID(),
	// secret s.ClientSecret() and this private key.
	privateKeyPEM := sgidtest.EncodePKCS8(s.ClientKey())
	fmt.Println(s.Issuer() == s.URL()+"/v2", strings.HasPrefix(privateKeyPEM, "-----BEGIN PRIVATE KEY-----"))

	// After a login, the client should report this user.
	fmt.Println(sgidtest.PairwiseSub(s.ClientID(), "maria-dela-cruz") != "")

	// From now on ID tokens carry the wrong nonce and the token endpoint is
	// slow.
	s.SetFaults(sgidtest.Faults{
		WrongNonce: true,
		Delay:      map[sgidtest.Endpoint]time.Duration{sgidtest.EndpointToken: 50 * time.Millisecond},
	})
	// Output:
	// true true
	// true
}

// A test takes the authorization URL the client under test built (here by
// hand) and lets a persona log in, or cancel, without a browser; the client's
// callback handler then gets the URL the browser would have been sent to.
func ExampleServer_Authorize() {
	s, err := sgidtest.NewServer(sgidtest.Options{
		Client: sgidtest.Client{RedirectURIs: []string{"https://app.test/callback"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	verifier := strings.Repeat("v", 43)
	challenge := sha256.Sum256([]byte(verifier))
	authURL := s.Issuer() + "/oauth/authorize?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {s.ClientID()},
		"redirect_uri":          {"https://app.test/callback"},
		"scope":                 {"openid myinfo.name"},
		"state":                 {"st4te"},
		"nonce":                 {"n0nce"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}.Encode()

	ctx := context.Background() // in a test, t.Context()
	for _, answer := range []func() (string, error){
		func() (string, error) { return s.Authorize(ctx, authURL, "tan-ah-kow") },
		func() (string, error) { return s.Cancel(ctx, authURL) },
	} {
		callback, err := answer()
		if err != nil {
			fmt.Println(err)
			return
		}
		u, _ := url.Parse(callback)
		q := u.Query()
		fmt.Printf("%s state=%s code=%t error=%q\n", u.Host+u.Path, q.Get("state"), q.Get("code") != "", q.Get("error"))
	}
	// Output:
	// app.test/callback state=st4te code=true error=""
	// app.test/callback state=st4te code=false error="access_denied"
}
