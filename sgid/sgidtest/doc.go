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
// A test starts a server in one line and configures the client under test
// from it; the server is closed when the test ends:
//
//	idp := sgidtest.Start(t, sgidtest.Options{
//		Client: sgidtest.Client{RedirectURIs: []string{"https://app.test/callback"}},
//	})
//	client := myapp.NewSgIDClient(idp.URL(), idp.ClientID(), idp.ClientSecret(),
//		sgidtest.EncodePKCS8(idp.ClientKey()))
package sgidtest
