package sgidtest_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// A test configures the client under test from the server, logs in, then
// breaks the server on purpose to see the client refuse.
func Example() {
	s, err := sgidtest.NewServer(sgidtest.Options{
		Client:  sgidtest.Client{RedirectURIs: []string{"https://app.test/callback"}},
		Profile: sgidtest.ProfileObserved,
		Persona: "maria-dela-cruz",
	})
	if err != nil {
		panic(err)
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
