// Package sgid is a relying-party client for sgID v2, the Singapore government's
// OpenID Connect identity provider.
//
// It does the whole authorization-code flow as sgID really behaves: PKCE (S256), state
// and nonce generation, the authorization URL, the client_secret_post code exchange,
// ID token verification (RS256 only, with a cached JWKS that is refetched, rate
// limited, when a token names an unknown key), and the userinfo call with its
// two-layer end-to-end decryption (an RSA-encrypted block key, then one JWE per field).
//
// The package imports no Caddy and makes no network call at construction, so any Go
// program can use it and a server can start while sgID is unreachable. Errors are
// typed so that callers can tell a cancelled login from an expired code, an outage,
// a forged token or a decryption failure (see the Err* values); no error string holds
// personal data, tokens, secrets or key material.
//
// A login, in outline:
//
//	c, err := sgid.New(sgid.Config{ClientID: id, ClientSecret: secret, PrivateKey: pem,
//		RedirectURI: "https://app.example.gov.sg/.sgid/callback"})
//	req, err := c.NewAuthRequest("")          // keep req (state, nonce, verifier) for the callback
//	http.Redirect(w, r, c.AuthURL(req), http.StatusFound)
//	// ... on the callback:
//	id, err := c.Callback(ctx, r.URL.Query(), req)
//	// id.Sub is the pairwise user id; id.Data maps scope names to plaintext values.
package sgid
