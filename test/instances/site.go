package instances

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Site is the Caddyfile of one gated site in front of Upstream, as one Caddy
// instance serves it. Instances of one cluster, behind a load balancer, have
// the same Public and each its own Addr on Public's port.
type Site struct {
	Admin    string // admin API address; empty turns the admin API off
	Storage  string // file_system storage directory
	Addr     string // loopback host:port this instance listens on (bind)
	Public   string // host:port of the site address, the Host clients send; default Addr
	Upstream string // host:port of the app
	Sgid     string // lines added inside the sgid block
	Extra    string // site directives before reverse_proxy
	LogLevel string // Caddy's log level; default WARN
}

// LocalSite is a Site with storage in front of upstream (a URL), on a free
// loopback address, and with its admin API on another if admin is set.
func LocalSite(storage, upstream string, admin bool) (Site, error) {
	s := Site{Storage: storage, Upstream: strings.TrimPrefix(upstream, "http://")}
	var err error
	if s.Addr, err = FreeAddr(); err != nil {
		return Site{}, err
	}
	if admin {
		if s.Admin, err = FreeAddr(); err != nil {
			return Site{}, err
		}
	}
	return s, nil
}

func (s Site) public() string {
	if s.Public == "" {
		return s.Addr
	}
	return s.Public
}

// URL is the site's public URL, the one its users and its redirect URI name.
func (s Site) URL() string { return "http://" + s.public() }

// Transport reaches this instance for requests to the public URL, as a load
// balancer would: connections to Public are dialled to Addr; any other
// address, such as the fake sgID's, is dialled as it is. Each call returns a
// new Transport.
func (s Site) Transport() *http.Transport {
	public, addr := s.public(), s.Addr
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
		if address == public {
			address = addr
		}
		return d.DialContext(ctx, network, address)
	}}
}

// Caddyfile renders s. The sgID credentials come from the environment made by
// Env, as {env.*} placeholders, so the config file holds no secret. The site
// binds Addr's host only, so that instances of a cluster can share the port.
func (s Site) Caddyfile() string {
	admin := "off"
	if s.Admin != "" {
		admin = s.Admin
	}
	level := s.LogLevel
	if level == "" {
		level = "WARN"
	}
	bind, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		bind = s.Addr // Caddy will refuse it, and say why
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	storage file_system %s
	log {
		level %s
	}
}
http://%s {
	bind %s
	sgid {
		client_id {env.SGID_CLIENT_ID}
		client_secret {env.SGID_CLIENT_SECRET}
		private_key {env.SGID_PRIVATE_KEY}
		hostname {env.SGID_HOSTNAME}
		scope openid myinfo.name
		forward myinfo.name
%s
	}
%s
	reverse_proxy %s
}
`, admin, s.Storage, level, s.public(), bind, s.Sgid, s.Extra, s.Upstream)
}

// Env is the environment that carries idp's client credentials to Caddy.
func Env(idp *sgidtest.Server) []string {
	return []string{
		"SGID_CLIENT_ID=" + idp.ClientID(),
		"SGID_CLIENT_SECRET=" + idp.ClientSecret(),
		"SGID_PRIVATE_KEY=" + sgidtest.EncodePKCS8(idp.ClientKey()),
		"SGID_HOSTNAME=" + idp.URL(),
	}
}

// FreeAddr asks the OS for a free loopback port. Another process may take it
// before Caddy binds it; on this test machine that has not been seen.
func FreeAddr() (string, error) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// FreeAddrs is n addresses with one port, free on each of 127.0.0.1,
// 127.0.0.2, ... 127.0.0.n, for the instances of one cluster. The OS picks a
// port free on the first; it is tried on the others, and another is picked if
// it is taken there.
func FreeAddrs(n int) ([]string, error) {
	const tries = 20
	var lastErr error
	for range tries {
		addrs, err := freeAddrs(n)
		if err == nil {
			return addrs, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no port free on %d loopback addresses in %d tries: %w", n, tries, lastErr)
}

func freeAddrs(n int) ([]string, error) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer first.Close()
	_, port, _ := net.SplitHostPort(first.Addr().String())
	addrs := []string{first.Addr().String()}
	for i := 2; i <= n; i++ {
		addr := net.JoinHostPort(fmt.Sprintf("127.0.0.%d", i), port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, addr)
	}
	return addrs, nil
}
