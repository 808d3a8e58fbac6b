package sgid

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// DefaultHostname is sgID's production hostname.
const DefaultHostname = "https://api.id.gov.sg"

// DefaultScopes are the scopes requested when Config.Scopes is empty.
var DefaultScopes = []string{"openid", "myinfo.name"}

const (
	defaultTimeout     = 10 * time.Second
	defaultClockSkew   = 60 * time.Second
	defaultJWKSRefresh = 10 * time.Second
	maxClockSkew       = 10 * time.Minute

	// Response body limits. Userinfo carries every requested field, some of which
	// (children records) run to kilobytes each, encrypted and base64url'd.
	maxTokenBody    = 64 << 10
	maxJWKSBody     = 256 << 10
	maxUserInfoBody = 2 << 20
)

// Config is what a relying party knows about itself and sgID.
type Config struct {
	// ClientID is the client id from the sgID developer portal. Required.
	ClientID string
	// ClientSecret is the client secret from the portal. Required.
	ClientSecret string
	// PrivateKey is the client's RSA private key as PEM text (PKCS#8 or PKCS#1, with
	// real or `\n`-escaped newlines). Required: it decrypts the user's data.
	PrivateKey string
	// Hostname is sgID's base URL. Default: https://api.id.gov.sg. Only its origin
	// counts: the issuer is the origin + "/v2".
	Hostname string
	// RedirectURI is the registered callback URL. It may be left empty when every
	// NewAuthRequest call names one.
	RedirectURI string
	// Scopes to request. Must contain "openid". Default: openid myinfo.name.
	Scopes []string
	// HTTPClient makes the calls to sgID. Default: a client with its own transport.
	HTTPClient *http.Client
	// Timeout bounds each call to sgID (token, userinfo, JWKS). Default: 10s.
	Timeout time.Duration
	// ClockSkew is how far the ID token's exp and iat may be off this machine's
	// clock. Default: 60s; at most 10m.
	ClockSkew time.Duration
	// JWKSRefreshInterval is the least time between two JWKS fetches caused by an
	// ID token with an unknown key id. Default: 10s.
	JWKSRefreshInterval time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Observe, if set, is called after every HTTP call to sgID with the endpoint
	// ("token", "userinfo" or "jwks"), the time from sending the request to having
	// read the body, and the error that ended the call: nil when sgID answered
	// below 500 (even with an OAuth error, which the caller reads), otherwise an
	// error matching ErrUnavailable or ErrBadResponse (an oversized body). It is
	// for metrics: it runs on the request's goroutine, so it must be fast and
	// safe for concurrent use. Default: none.
	Observe func(endpoint string, d time.Duration, err error)
}

// Client talks to sgID as one relying party. It is safe for concurrent use.
type Client struct {
	cfg      Config
	key      *rsa.PrivateKey
	issuer   string
	authURL  string
	tokenURL string
	userURL  string
	jwksURL  string
	scope    string
	http     *http.Client
	keys     *keySet
	verifier *oidc.IDTokenVerifier
	now      func() time.Time
}

// New checks cfg and builds a client. It makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("sgid: client id is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("sgid: client secret is required")
	}
	key, err := ParsePrivateKey(cfg.PrivateKey)
	if err != nil {
		return nil, err
	}
	issuer, err := Issuer(cfg.Hostname)
	if err != nil {
		return nil, err
	}
	if cfg.RedirectURI != "" {
		if err := CheckRedirectURI(cfg.RedirectURI); err != nil {
			return nil, err
		}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if err := CheckScopes(cfg.Scopes); err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 || cfg.ClockSkew < 0 || cfg.JWKSRefreshInterval < 0 {
		return nil, errors.New("sgid: timeout, clock skew and JWKS refresh interval must not be negative")
	}
	if cfg.ClockSkew > maxClockSkew {
		return nil, fmt.Errorf("sgid: clock skew %s is more than the %s allowed", cfg.ClockSkew, maxClockSkew)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = defaultClockSkew
	}
	if cfg.JWKSRefreshInterval == 0 {
		cfg.JWKSRefreshInterval = defaultJWKSRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}

	c := &Client{
		cfg:      cfg,
		key:      key,
		issuer:   issuer,
		authURL:  issuer + "/oauth/authorize",
		tokenURL: issuer + "/oauth/token",
		userURL:  issuer + "/oauth/userinfo",
		jwksURL:  issuer + "/.well-known/jwks.json",
		scope:    strings.Join(cfg.Scopes, " "),
		http:     cfg.HTTPClient,
		now:      cfg.Now,
	}
	c.keys = &keySet{client: c, minRefresh: cfg.JWKSRefreshInterval}
	c.verifier = oidc.NewVerifier(issuer, c.keys, &oidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: []string{oidc.RS256},
		// go-oidc checks exp strictly against Now; moving its clock back by the
		// skew lets a token that expired within the skew through.
		Now: func() time.Time { return c.now().Add(-cfg.ClockSkew) },
		// iss and aud are checked in verifyIDToken, so that each failure has its
		// own reason instead of a go-oidc message.
		SkipIssuerCheck:   true,
		SkipClientIDCheck: true,
	})
	return c, nil
}

// Issuer derives sgID's issuer from a hostname: the hostname's origin + "/v2". An
// empty hostname means DefaultHostname.
func Issuer(hostname string) (string, error) {
	if hostname == "" {
		hostname = DefaultHostname
	}
	u, err := url.Parse(hostname)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("sgid: hostname %q is not an http(s) URL", sanitize(hostname))
	}
	if u.User != nil {
		return "", errors.New("sgid: hostname must not hold credentials")
	}
	return u.Scheme + "://" + strings.ToLower(u.Host) + "/v2", nil
}

// CheckScopes reports whether scopes is a request sgID accepts: it must contain
// openid, and each scope must be a plain token. Unknown myinfo.* and pocdex.* scopes
// are allowed: sgID adds scopes over time.
func CheckScopes(scopes []string) error {
	hasOpenID := false
	seen := make(map[string]bool, len(scopes))
	for _, s := range scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
			return fmt.Errorf("sgid: scope %q is not a valid scope token", sanitize(s))
		}
		if seen[s] {
			return fmt.Errorf("sgid: scope %q is listed twice", s)
		}
		seen[s] = true
		if s == "openid" {
			hasOpenID = true
		}
	}
	if !hasOpenID {
		return errors.New(`sgid: scopes must include "openid"`)
	}
	return nil
}

// CheckRedirectURI is the rule for a redirect URI: an absolute http(s) URL with
// a host, and neither user info nor a fragment (OAuth 2.0 forbids a fragment;
// user info would be sent to sgID and back in every login).
func CheckRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("sgid: redirect URI %q is not an absolute http(s) URL", sanitize(raw))
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("sgid: redirect URI must not have a fragment")
	}
	if u.User != nil {
		return errors.New("sgid: redirect URI must not have user info")
	}
	return nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = defaultTimeout
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{
		Transport: t,
		// sgID's API endpoints never redirect; following one could send the
		// client secret or a bearer token somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// IssuerURL is the issuer this client expects in ID tokens.
func (c *Client) IssuerURL() string { return c.issuer }

// Scopes are the scopes this client requests.
func (c *Client) Scopes() []string { return append([]string(nil), c.cfg.Scopes...) }

// PrivateKey is the parsed client private key.
func (c *Client) PrivateKey() *rsa.PrivateKey { return c.key }

// CloseIdleConnections closes the client's idle connections to sgID, for when
// it is being replaced (a Caddy config reload).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// do sends req with the configured timeout and reads at most limit bytes of the
// body. Transport failures, timeouts and 5xx become UnavailableError; other
// statuses are the caller's to interpret.
func (c *Client) do(ctx context.Context, endpoint string, req *http.Request, limit int64) (resp *http.Response, body []byte, err error) {
	if observe := c.cfg.Observe; observe != nil {
		// Wall time, not c.now: Now may be a test's fixed clock.
		start := time.Now()
		defer func() { observe(endpoint, time.Since(start), err) }()
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err = c.http.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, &UnavailableError{Endpoint: endpoint, Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, &UnavailableError{Endpoint: endpoint, Status: resp.StatusCode}
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, &UnavailableError{Endpoint: endpoint, Err: scrubURLError(err)}
	}
	if int64(len(body)) > limit {
		return nil, nil, &ResponseError{Endpoint: endpoint, Reason: fmt.Sprintf("body larger than %d bytes", limit)}
	}
	return resp, body, nil
}

// scrubURLError keeps the cause of a transport error but not the URL, which for
// the authorize and token flows could hold a code.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeJSON parses a JSON response body. The content type is not checked: what
// matters is that the body parses.
func decodeJSON(endpoint string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &ResponseError{Endpoint: endpoint, Reason: "body is not valid JSON"}
	}
	return nil
}
