package sgid

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// AuthRequest is one login attempt: the secrets the callback must match. Keep it
// where only this browser can bring it back (the gateway keeps it in an encrypted
// cookie) and use it once.
type AuthRequest struct {
	State        string `json:"state"`
	Nonce        string `json:"nonce"`
	CodeVerifier string `json:"code_verifier"`
	RedirectURI  string `json:"redirect_uri"`
}

// randomBytes is the entropy behind each of state and nonce (and, through
// oauth2.GenerateVerifier, the PKCE verifier):
// 32 bytes, 256 bits, as the SDKs use.
const randomBytes = 32

// NewAuthRequest makes a fresh state, nonce and PKCE verifier from the CSPRNG.
// redirectURI overrides Config.RedirectURI; one of the two must be set.
func (c *Client) NewAuthRequest(redirectURI string) (*AuthRequest, error) {
	if redirectURI == "" {
		redirectURI = c.cfg.RedirectURI
		if redirectURI == "" {
			return nil, errors.New("sgid: no redirect URI: set Config.RedirectURI or pass one")
		}
	} else if err := CheckRedirectURI(redirectURI); err != nil {
		return nil, err
	}
	return &AuthRequest{
		State:        randomToken(),
		Nonce:        randomToken(),
		CodeVerifier: oauth2.GenerateVerifier(), // 32 random bytes, base64url: as randomToken
		RedirectURI:  redirectURI,
	}, nil
}

// randomToken is base64url without padding of 32 random bytes: 43 characters, all
// in the PKCE verifier alphabet [A-Za-z0-9-._~].
func randomToken() string {
	var b [randomBytes]byte
	// crypto/rand.Read never fails on supported platforms; it panics instead.
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CodeChallenge is the S256 PKCE challenge for verifier:
// base64url-no-padding(SHA-256(verifier)), as golang.org/x/oauth2 makes it.
func CodeChallenge(verifier string) string {
	return oauth2.S256ChallengeFromVerifier(verifier)
}

// AuthURL is where to send the browser to log in for req.
func (c *Client) AuthURL(req *AuthRequest) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.cfg.ClientID},
		"redirect_uri":          {req.RedirectURI},
		"scope":                 {c.scope},
		"nonce":                 {req.Nonce},
		"state":                 {req.State},
		"code_challenge":        {CodeChallenge(req.CodeVerifier)},
		"code_challenge_method": {"S256"},
	}
	var b strings.Builder
	b.Grow(len(c.authURL) + 400)
	b.WriteString(c.authURL)
	b.WriteByte('?')
	b.WriteString(q.Encode())
	return b.String()
}

// CheckCallback matches the query of a callback request to req: an OAuth error from
// sgID, a state that is not req's, or a missing code is an error. It returns the
// authorization code.
func CheckCallback(query url.Values, req *AuthRequest) (string, error) {
	// The state comes first: an error response carries it too (RFC 6749 4.1.2.1),
	// and one that does not match is nobody's answer.
	states := query["state"]
	if len(states) != 1 || req == nil || req.State == "" ||
		subtle.ConstantTimeCompare([]byte(states[0]), []byte(req.State)) != 1 {
		return "", errBadCallback("state does not match this login attempt")
	}
	if code := query.Get("error"); code != "" {
		return "", &OAuthError{
			Endpoint:    "authorize",
			Code:        sanitize(code),
			Description: sanitize(query.Get("error_description")),
		}
	}
	codes := query["code"]
	if len(codes) != 1 || codes[0] == "" {
		return "", errBadCallback("exactly one code parameter is required")
	}
	return codes[0], nil
}

type callbackError string

func errBadCallback(reason string) error     { return callbackError(reason) }
func (e callbackError) Error() string        { return "sgid: invalid callback: " + string(e) }
func (e callbackError) Is(target error) bool { return target == ErrBadCallback }
