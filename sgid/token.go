package sgid

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Tokens is the outcome of a code exchange whose ID token verified.
type Tokens struct {
	// AccessToken is opaque; it authorises the userinfo call.
	AccessToken string
	// Sub is the verified, pairwise user id from the ID token.
	Sub string
	// Expiry is the ID token's exp.
	Expiry time.Time
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	TokenType   string `json:"token_type"`
}

type oauthErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// Exchange trades an authorization code for tokens (client_secret_post, with the
// PKCE verifier) and verifies the ID token against req's nonce.
func (c *Client) Exchange(ctx context.Context, code string, req *AuthRequest) (*Tokens, error) {
	tr, err := c.redeem(ctx, code, req)
	if err != nil {
		return nil, err
	}
	return c.verifyIDToken(ctx, tr.IDToken, req.Nonce, tr.AccessToken)
}

// redeem is the token call of Exchange: the POST and the answer's shape, but not
// the ID token, which the caller must verify before using anything it got.
//
// It is written here rather than taken from golang.org/x/oauth2's
// Config.Exchange (whose PKCE helpers NewAuthRequest uses) because the gateway
// needs what that does not give: a body bound of its own per endpoint (x/oauth2
// reads up to 1 MB), the typed errors callers tell apart (invalid_client from a
// 401 as well as from the body; sgID's 5xx as ErrUnavailable), no redirect ever
// followed with the client secret, and each call timed for the metrics.
func (c *Client) redeem(ctx context.Context, code string, req *AuthRequest) (*tokenResponse, error) {
	const endpoint = "token"
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {req.RedirectURI},
		"code_verifier": {req.CodeVerifier},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &UnavailableError{Endpoint: endpoint, Err: err}
	}
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tr tokenResponse
	if err := c.callJSON(ctx, endpoint, hreq, maxTokenBody, &tr); err != nil {
		return nil, err
	}
	if tr.AccessToken == "" || tr.IDToken == "" {
		return nil, &ResponseError{Endpoint: endpoint, Reason: "access_token or id_token missing"}
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, &ResponseError{Endpoint: endpoint, Reason: fmt.Sprintf("token_type %q is not Bearer", sanitize(tr.TokenType))}
	}
	return &tr, nil
}

// callJSON sends an API request to sgID and decodes its 200 JSON answer into v;
// any other status is read as an OAuth error response.
func (c *Client) callJSON(ctx context.Context, endpoint string, req *http.Request, limit int64, v any) error {
	req.Header.Set("Accept", "application/json")
	resp, body, err := c.do(ctx, endpoint, req, limit)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return oauthFailure(endpoint, resp.StatusCode, body)
	}
	return decodeJSON(endpoint, body, v)
}

// oauthFailure reads a non-200 answer: an OAuth error body when there is one.
func oauthFailure(endpoint string, status int, body []byte) error {
	var eb oauthErrorBody
	if err := decodeJSON(endpoint, body, &eb); err == nil && eb.Error != "" {
		return &OAuthError{Endpoint: endpoint, Status: status, Code: sanitize(eb.Error), Description: sanitize(eb.Description)}
	}
	if status == http.StatusUnauthorized {
		return &OAuthError{Endpoint: endpoint, Status: status, Code: "invalid_client"}
	}
	return &ResponseError{Endpoint: endpoint, Reason: fmt.Sprintf("HTTP %d without an oauth error", status)}
}

// verifyIDToken applies every ID token rule of the protocol. go-oidc parses the
// token, checks the RS256 signature through the client's key set and checks exp;
// the rest is checked here so each failure has its own reason.
func (c *Client) verifyIDToken(ctx context.Context, raw, nonce, accessToken string) (*Tokens, error) {
	slot := &sigFailure{}
	tok, err := c.verifier.Verify(context.WithValue(ctx, sigFailureKey{}, slot), raw)
	if err != nil {
		if slot.err != nil {
			return nil, slot.err
		}
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, &IDTokenError{Reason: "expired"}
		}
		return nil, &IDTokenError{Reason: "unreadable claims", Err: err}
	}
	now := c.now()
	switch {
	case tok.Issuer != c.issuer:
		return nil, &IDTokenError{Reason: fmt.Sprintf("issuer %q is not %q", sanitize(tok.Issuer), c.issuer)}
	case !slices.Contains(tok.Audience, c.cfg.ClientID):
		return nil, &IDTokenError{Reason: "audience does not include this client"}
	case tok.IssuedAt.IsZero():
		return nil, &IDTokenError{Reason: "no iat claim"}
	case tok.IssuedAt.After(now.Add(c.cfg.ClockSkew)):
		return nil, &IDTokenError{Reason: "issued in the future"}
	case subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 || nonce == "":
		return nil, &IDTokenError{Reason: "nonce does not match this login attempt"}
	case tok.Subject == "":
		return nil, &IDTokenError{Reason: "no sub claim"}
	}
	if tok.AccessTokenHash != "" {
		if err := tok.VerifyAccessToken(accessToken); err != nil {
			return nil, &IDTokenError{Reason: "at_hash does not match the access token"}
		}
	}
	return &Tokens{AccessToken: accessToken, Sub: tok.Subject, Expiry: tok.Expiry}, nil
}
