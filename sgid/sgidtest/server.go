package sgidtest

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Profile selects the JWE algorithms of userinfo responses.
type Profile int

const (
	// ProfileSDK: key = RSA-OAEP-256 + A256GCM (no kid); data fields = A128GCMKW + A128GCM with a 16-byte block key (the SDK test vectors).
	ProfileSDK Profile = iota
	// ProfileObserved: key = RSA-OAEP + A128CBC-HS256 with a "kid" header; data fields = dir + A256GCM with a 32-byte block key (observed from a real server).
	ProfileObserved
)

// Endpoint names one of the server's endpoints, for per-endpoint faults and
// request counts.
type Endpoint string

const (
	EndpointAuthorize Endpoint = "authorize" // includes the chooser's consent step
	EndpointToken     Endpoint = "token"
	EndpointUserInfo  Endpoint = "userinfo"
	EndpointJWKS      Endpoint = "jwks"
	EndpointDiscovery Endpoint = "discovery"
)

var endpoints = []Endpoint{EndpointAuthorize, EndpointToken, EndpointUserInfo, EndpointJWKS, EndpointDiscovery}

// Client is the one relying party the server knows.
type Client struct {
	ID, Secret   string         // defaults: "sgidtest-client" and a random 32-char secret
	PublicKey    *rsa.PublicKey // nil: the server makes a client key pair, see Server.ClientKey
	RedirectURIs []string       // exact-match allowlist; empty = any absolute http(s) URL
	Scopes       []string       // scopes the client may request; nil = the whole Catalog
}

// Options configure a Server. The zero value is a working server.
type Options struct {
	Client   Client
	Profile  Profile
	Persona  string           // persona ID consented automatically; default: the first persona
	Chooser  bool             // authorize shows an HTML persona chooser instead of auto-consent
	CodeTTL  time.Duration    // default 60s
	TokenTTL time.Duration    // access token and ID token lifetime; default 5m (ID token exp = iat + TokenTTL)
	Now      func() time.Time // the server's clock; default time.Now

	// Data replaces the values of these fields for every persona, e.g. a
	// record of a chosen size. Default: none.
	Data map[string]string

	// PublicURL is the origin clients and browsers reach the server at, for
	// a demo behind a port mapping or a proxy. Default: http:// and the
	// listener's address (localhost for a wildcard address).
	PublicURL string
}

// Server is a fake sgID v2 server. All methods are safe for concurrent use.
type Server struct {
	ts        *httptest.Server
	handler   http.Handler
	publicURL string
	now       func() time.Time
	codeTTL   time.Duration
	tokenTTL  time.Duration

	client        Client
	clientKey     *rsa.PrivateKey
	data          map[string]string // Options.Data
	allowedScopes map[string]bool

	requests    map[Endpoint]*atomic.Int64
	handlerTime atomic.Int64
	closing     chan struct{}
	closeOnce   sync.Once

	mu      sync.Mutex
	url     string
	faults  Faults
	persona string
	profile Profile
	chooser bool
	keys    []signingKey // the last one signs
	state   store
}

// Start starts a server for t, as NewServer does, fails t if opts are not
// valid, and closes the server when t and its subtests are done.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("sgidtest: starting the server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a server on 127.0.0.1 with an OS-chosen port. Tests use
// Start; NewServer is for programs without a testing.TB (a demo, a
// benchmark driver).
func NewServer(opts Options) (*Server, error) {
	s, err := NewUnstartedServer(opts)
	if err != nil {
		return nil, err
	}
	s.Start()
	return s, nil
}

// NewUnstartedServer makes a server to be started with Start or StartOn.
func NewUnstartedServer(opts Options) (*Server, error) {
	s := &Server{
		now:      opts.Now,
		codeTTL:  opts.CodeTTL,
		tokenTTL: opts.TokenTTL,
		client:   opts.Client,
		profile:  opts.Profile,
		chooser:  opts.Chooser,
		persona:  opts.Persona,
		data:     maps.Clone(opts.Data),
		requests: make(map[Endpoint]*atomic.Int64),
		closing:  make(chan struct{}),
		state:    newStore(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.codeTTL == 0 {
		s.codeTTL = 60 * time.Second
	}
	if s.tokenTTL == 0 {
		s.tokenTTL = 5 * time.Minute
	}
	if s.codeTTL < 0 || s.tokenTTL < 0 {
		return nil, errors.New("negative code or token lifetime")
	}
	if s.profile != ProfileSDK && s.profile != ProfileObserved {
		return nil, fmt.Errorf("unknown profile %d", s.profile)
	}
	if s.persona == "" {
		s.persona = personas[0].ID
	} else if _, ok := personaByID(s.persona); !ok {
		return nil, fmt.Errorf("unknown persona %q", s.persona)
	}
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("public url %q is not an http(s) origin", opts.PublicURL)
		}
		s.publicURL = u.Scheme + "://" + u.Host
	}
	if err := s.setUpClient(); err != nil {
		return nil, err
	}
	k, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s.keys = []signingKey{k}
	for _, e := range endpoints {
		s.requests[e] = new(atomic.Int64)
	}
	s.handler = s.routes()
	s.ts = httptest.NewUnstartedServer(s.handler)
	// The demo serves people over real networks; a stalled client must not
	// pin a connection forever.
	s.ts.Config.ReadHeaderTimeout = 10 * time.Second
	s.setURL(s.ts.Listener.Addr())
	return s, nil
}

// setUpClient checks the client before making its key, so a bad Options
// costs no key from the pool.
func (s *Server) setUpClient() error {
	c := &s.client
	if c.ID == "" {
		c.ID = "sgidtest-client"
	}
	if c.Secret == "" {
		c.Secret = randomHex(16)
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	for _, u := range c.RedirectURIs {
		if !absoluteHTTPURL(u) {
			return fmt.Errorf("redirect uri %q is not an absolute http(s) url without fragment", u)
		}
	}
	if c.Scopes == nil {
		c.Scopes = Catalog()
	}
	c.Scopes = slices.Clone(c.Scopes)
	if !slices.Contains(c.Scopes, "openid") {
		return errors.New("client scopes must include openid")
	}
	s.allowedScopes = make(map[string]bool, len(c.Scopes))
	for _, sc := range c.Scopes {
		s.allowedScopes[sc] = true
	}
	if c.PublicKey == nil {
		k, err := NewRSAKey()
		if err != nil {
			return err
		}
		s.clientKey = k
		c.PublicKey = &k.PublicKey
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v2/oauth/authorize", s.endpoint(EndpointAuthorize, s.handleAuthorize))
	mux.Handle("GET /v2/oauth/authorize/consent", s.endpoint(EndpointAuthorize, s.handleConsent))
	mux.Handle("POST /v2/oauth/token", s.endpoint(EndpointToken, s.handleToken))
	mux.Handle("GET /v2/oauth/userinfo", s.endpoint(EndpointUserInfo, s.handleUserInfo))
	mux.Handle("GET /v2/.well-known/jwks.json", s.endpoint(EndpointJWKS, s.handleJWKS))
	mux.Handle("GET /v2/.well-known/openid-configuration", s.endpoint(EndpointDiscovery, s.handleDiscovery))
	return mux
}

// endpoint counts requests, applies transport faults and accounts handler
// time, leaving out injected delays so benchmarks see only the server's work.
func (s *Server) endpoint(e Endpoint, h http.HandlerFunc) http.Handler {
	counter := s.requests[e]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		counter.Add(1)
		slept, handled := s.applyTransportFaults(e, w, r)
		if !handled {
			h(w, r)
		}
		s.handlerTime.Add(int64(time.Since(start) - slept))
	})
}

// Start serves on 127.0.0.1 with an OS-chosen port.
func (s *Server) Start() {
	s.ts.Start()
	s.setURL(s.ts.Listener.Addr())
}

// StartOn serves on a listener the caller made, for the demo.
func (s *Server) StartOn(l net.Listener) {
	s.ts.Listener.Close()
	s.ts.Listener = l
	s.ts.Start()
	s.setURL(l.Addr())
}

func (s *Server) setURL(addr net.Addr) {
	u := "http://" + addr.String()
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		// A wildcard address is not somewhere a browser can go.
		u = fmt.Sprintf("http://localhost:%d", ta.Port)
	}
	s.mu.Lock()
	s.url = u
	s.mu.Unlock()
}

// Close stops the server, cutting injected delays short, and waits for
// requests in flight.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.ts.Close()
}

// URL is what a client configuration calls the hostname: an origin without
// a path, e.g. http://127.0.0.1:41234. Before Start it is already the
// address Start will serve on; StartOn changes it to the given listener's.
func (s *Server) URL() string {
	if s.publicURL != "" {
		return s.publicURL
	}
	return s.listenerURL()
}

// listenerURL is the origin the server listens on, which is URL() unless
// Options.PublicURL is set.
func (s *Server) listenerURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Issuer is URL() + "/v2", the ID tokens' "iss".
func (s *Server) Issuer() string { return s.URL() + "/v2" }

// Handler serves the whole server, for use without a listener.
func (s *Server) Handler() http.Handler { return s.handler }

// ClientID returns the client's ID.
func (s *Server) ClientID() string { return s.client.ID }

// ClientSecret returns the client's secret.
func (s *Server) ClientSecret() string { return s.client.Secret }

// ClientKey returns the client's private key, or nil if
// Options.Client.PublicKey was given.
func (s *Server) ClientKey() *rsa.PrivateKey { return s.clientKey }

// SetFaults replaces the faults in force; the zero Faults turns them all off.
func (s *Server) SetFaults(f Faults) {
	f = f.clone()
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// SetPersona changes the persona consented to automatically from now on.
func (s *Server) SetPersona(id string) error {
	if _, ok := personaByID(id); !ok {
		return fmt.Errorf("unknown persona %q", id)
	}
	s.mu.Lock()
	s.persona = id
	s.mu.Unlock()
	return nil
}

// SetProfile changes the JWE algorithms of userinfo responses from now on.
func (s *Server) SetProfile(p Profile) {
	s.mu.Lock()
	s.profile = p
	s.mu.Unlock()
}

// SetChooser turns the HTML persona chooser on or off for later
// authorization requests.
func (s *Server) SetChooser(on bool) {
	s.mu.Lock()
	s.chooser = on
	s.mu.Unlock()
}

// Requests returns how many requests endpoint e has served, faulted ones
// included.
func (s *Server) Requests(e Endpoint) int {
	c, ok := s.requests[e]
	if !ok {
		return 0
	}
	return int(c.Load())
}

// HandlerTime is the wall time spent inside the server's handlers so far,
// injected delays excluded.
func (s *Server) HandlerTime() time.Duration { return time.Duration(s.handlerTime.Load()) }

func (s *Server) snapshot() (Faults, Profile, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults, s.profile, s.persona, s.chooser
}

func absoluteHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		!strings.Contains(raw, "#") && u.User == nil
}
