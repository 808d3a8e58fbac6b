// Package sgidtest runs a fake sgID v2 server for tests, benchmarks and demos.
//
// The server speaks the protocol a relying party sees (authorize, token,
// userinfo, JWKS, discovery) with real cryptography: RS256 ID tokens, a JWKS
// with rotation, and userinfo encrypted end to end with JWE exactly as sgID
// does it, in either of the two algorithm profiles met in practice. It is as
// strict as the real server (PKCE S256, exact redirect_uri, single-use codes,
// client_secret_post) so that a client passing against it is not merely
// passing against a lenient fake. Faults make it misbehave on purpose, one
// way at a time, so a client's refusals can be tested too.
//
// Personas are fictional people whose data covers every scope in the sgID
// data catalog; a persona is consented to automatically, or chosen by a
// person on an HTML page when Options.Chooser is set.
//
// A test in another project starts a server in one line, configures its
// relying party from it, and plays the person at sgID without a browser or
// HTML: Authorize answers the authorization URL the relying party built as a
// persona logging in, Cancel as a person pressing Cancel, and each returns the
// callback URL the browser would be sent to. The server is closed when the
// test ends.
//
//	func TestLogin(t *testing.T) {
//		idp := sgidtest.Start(t, sgidtest.Options{
//			Client: sgidtest.Client{RedirectURIs: []string{"https://app.test/callback"}},
//		})
//		app := myapp.New(idp.URL(), idp.ClientID(), idp.ClientSecret(),
//			sgidtest.EncodePKCS8(idp.ClientKey()))
//		callback, err := idp.Authorize(t.Context(), app.LoginURL(), "tan-ah-kow")
//		if err != nil {
//			t.Fatal(err)
//		}
//		user, err := app.HandleCallback(callback)
//		if err != nil || user.Sub != sgidtest.PairwiseSub(idp.ClientID(), "tan-ah-kow") {
//			t.Fatalf("logged in %v, %v", user, err)
//		}
//	}
//
// Every method that can fail returns an error, and panics are left to
// broken invariants; only Start, which has a test to fail, fails it.
package sgidtest
