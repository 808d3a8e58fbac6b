package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/sgidproxy/caddy-sgid/session"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

// Site is where a gateway serves, fixed at provisioning and never taken from a
// request: the assertion's iss and aud, the login's redirect URI, the binding of
// its cookies and the keys it generates all derive from it. A request for any
// other Host is refused.
type Site struct {
	origin   string // scheme://host[:port], default port dropped: the assertion's iss
	host     string // host[:port] as a request's Host must carry it, lowercase
	secure   bool   // the origin is https
	redirect string // the redirect URI registered with sgID
	audience string // the assertion's aud
}

// NewSite fixes the site from redirect_uri when it is set, and otherwise from
// fromRoute: the origin of the one host the enclosing route matches.
func NewSite(redirectURI, audience string, fromRoute func() (origin string, err error)) (*Site, error) {
	if redirectURI == "" {
		origin, err := fromRoute()
		if err != nil {
			return nil, err
		}
		redirectURI = origin + EndpointPrefix + "callback"
	}
	u, err := ParseRedirectURI(redirectURI)
	if err != nil {
		return nil, err
	}
	s := &Site{secure: u.Scheme == "https", redirect: redirectURI}
	s.host = canonicalHost(u.Host, s.secure)
	s.origin = u.Scheme + "://" + s.host
	s.audience = audience
	if s.audience == "" {
		s.audience = s.host
	}
	return s, nil
}

// Origin is scheme://host[:port] with the scheme's default port dropped: the
// assertion's iss and what the cookies are bound to.
func (s *Site) Origin() string { return s.origin }

// Host is host[:port] as a request's Host must carry it, lowercase.
func (s *Site) Host() string { return s.host }

// Audience is the assertion's aud.
func (s *Site) Audience() string { return s.audience }

// RedirectURI is the callback URL registered with sgID.
func (s *Site) RedirectURI() string { return s.redirect }

// SessionBinding is what a site's cookies are bound to (session.Config.Binding):
// sgID's issuer URL, the client id and the site's origin. A program that mints
// cookies for a site, such as a load test, passes the same; the origin is
// read as the gateway reads it (case, the scheme's default port and any path
// do not matter).
func SessionBinding(issuer, clientID, siteOrigin string) []string {
	if u, err := url.Parse(siteOrigin); err == nil && u.Host != "" {
		siteOrigin = u.Scheme + "://" + canonicalHost(u.Host, u.Scheme == "https")
	}
	return []string{issuer, clientID, siteOrigin}
}

// ParseRedirectURI accepts what sgid.CheckRedirectURI does, within the size an
// attempt cookie keeps: the rule for redirect_uri, at adapt time and at
// provisioning.
func ParseRedirectURI(raw string) (*url.URL, error) {
	if err := sgid.CheckRedirectURI(raw); err != nil {
		return nil, fmt.Errorf("redirect_uri: %s", strings.TrimPrefix(err.Error(), "sgid: "))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redirect_uri: %w", err)
	}
	if !strings.HasSuffix(u.Path, EndpointPrefix+"callback") {
		// The gateway answers sgID's callback there and nowhere else (a
		// handle_path in front may strip a prefix): any other path would
		// send every login back to a page that never completes it.
		return nil, fmt.Errorf("redirect_uri: its path %q must end in %scallback, where the gateway takes sgID's callback", u.EscapedPath(), EndpointPrefix)
	}
	if len(raw) > session.MaxRedirectURI {
		// Each login attempt's cookie keeps it, within a fixed size.
		return nil, fmt.Errorf("redirect_uri is %d characters; at most %d", len(raw), session.MaxRedirectURI)
	}
	return u, nil
}

// canonicalHost lowercases a host[:port] and drops the scheme's default port,
// so that "App.example:443" and "app.example" are the same site over https.
func canonicalHost(hostport string, secure bool) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.TrimSuffix(hostport, ".")
	}
	host = strings.TrimSuffix(host, ".")
	if (secure && port == "443") || (!secure && port == "80") || port == "" {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// serves reports whether a request's Host is this site's.
func (s *Site) serves(requestHost string) bool {
	return requestHost == s.host || canonicalHost(requestHost, s.secure) == s.host
}

// misdirected answers a request for a Host this site does not serve: it starts
// no login and gets no identity, since its cookies, redirect URI and assertion
// would all be another site's.
func (g *Gateway) misdirected(w http.ResponseWriter, r *http.Request) error {
	return g.fail(w, r, outMisdirected, nil, "")
}
