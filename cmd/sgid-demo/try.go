package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// The try mode (-caddyfile) runs an operator's own Caddyfile against the fake
// sgID server, before the operator has sgID credentials: the Caddyfile stays
// as it is, and only what must point at the fake does. A credential given as
// {env.NAME} gets NAME set to the fake's value; one given any other way (a
// {file.*} path, a literal) is replaced in the adapted config by an {env.*}
// placeholder of the demo's, so that no secret enters the JSON config either
// way. hostname, whatever the Caddyfile says, is the fake's URL in the adapted
// config: it is no secret, and an {env.*} the Caddyfile may not use could not
// reach it.

// trySetting is one thing the try mode pointed at the fake, for the intro.
type trySetting struct {
	Field  string // the sgid subdirective
	Env    string // the variable set; "" for a change in the adapted config
	Value  string // what it was set to; "" for a secret
	Was    string // what the Caddyfile says, when it can be shown; "" when it is Env itself
	Secret bool
}

// trying is what the try mode knows about the Caddyfile it runs.
type trying struct {
	path     string
	settings []trySetting
	sites    []string // the Caddyfile's site addresses as URLs
	unset    []string // {env.*} placeholders of the config the environment does not set
}

// envOnly is a value that is one {env.*} placeholder and nothing else.
var envOnly = regexp.MustCompile(`^\{env\.([A-Za-z_][A-Za-z0-9_]*)\}$`)

// envAnywhere finds the {env.*} placeholders of an adapted config.
var envAnywhere = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// credentials are the sgid subdirectives that carry the sgID client's
// credentials, with the {env.*} name used for one the Caddyfile does not give
// as {env.*}.
var credentials = []struct{ field, env string }{
	{"client_id", "SGID_DEMO_CLIENT_ID"},
	{"client_secret", "SGID_DEMO_CLIENT_SECRET"},
	{"private_key", "SGID_DEMO_PRIVATE_KEY"},
}

// startTry starts the fake sgID server and Caddy with the Caddyfile at
// opts.Caddyfile, pointed at the fake.
func (d *Demo) startTry(opts Options) error {
	body, err := os.ReadFile(opts.Caddyfile)
	if err != nil {
		return err
	}
	d.try = &trying{path: opts.Caddyfile}
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": opts.Caddyfile})
	if err != nil {
		return fmt.Errorf("adapting %s: %w", opts.Caddyfile, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "sgid-demo: %s:%d: %s\n", w.File, w.Line, w.Message)
	}
	var cfg map[string]any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		return fmt.Errorf("reading the adapted config: %w", err)
	}
	handlers := findHandlers(cfg, "sgid")
	if len(handlers) == 0 {
		return fmt.Errorf("%s has no sgid handler", opts.Caddyfile)
	}
	if d.try.sites, err = siteURLs(opts.Caddyfile, body); err != nil {
		return err
	}

	sgidL, err := listen(opts.SgIDPort, "fake sgID server")
	if err != nil {
		return err
	}
	// No redirect URIs: the fake takes any, so that every site of the
	// Caddyfile, and any redirect_uri it sets, can log in.
	if d.sgid, err = sgidtest.NewUnstartedServer(sgidtest.Options{Chooser: true}); err != nil {
		sgidL.Close()
		return fmt.Errorf("fake sgID server: %w", err)
	}
	d.sgid.StartOn(sgidL)
	d.SgIDURL = d.sgid.URL()

	fake := map[string]string{
		"client_id":     d.sgid.ClientID(),
		"client_secret": d.sgid.ClientSecret(),
		"private_key":   sgidtest.EncodePKCS8(d.sgid.ClientKey()),
	}
	set := map[string]string{} // environment variable -> value
	for _, h := range handlers {
		for _, c := range credentials {
			was, _ := h[c.field].(string)
			s := trySetting{Field: c.field, Secret: c.field != "client_id"}
			if m := envOnly.FindStringSubmatch(was); m != nil {
				s.Env = m[1]
			} else {
				s.Env = c.env
				h[c.field] = "{env." + c.env + "}"
				// A literal secret is not repeated; a placeholder or a client id may be.
				if s.Was = was; s.Secret && !strings.HasPrefix(was, "{") {
					s.Was = "the Caddyfile's value"
				}
			}
			if old, ok := set[s.Env]; ok && old != fake[c.field] {
				return fmt.Errorf("%s: {env.%s} is used for two different credentials", opts.Caddyfile, s.Env)
			}
			set[s.Env] = fake[c.field]
			if !s.Secret {
				s.Value = fake[c.field]
			}
			d.try.add(s)
		}
		was, _ := h["hostname"].(string)
		if was == "" {
			was = sgid.DefaultHostname + " (the default)"
		}
		h["hostname"] = d.SgIDURL
		d.try.add(trySetting{Field: "hostname", Value: d.SgIDURL, Was: was})
	}

	// The try's keys, revocations and certificates are the fake's: they go to
	// a directory of their own, whatever storage the Caddyfile names, and the
	// config is not saved over the one `caddy run --resume` would load.
	if d.storage, err = os.MkdirTemp("", "sgid-try-"); err != nil {
		return fmt.Errorf("storage directory: %w", err)
	}
	was := "Caddy's default data directory"
	if cfg["storage"] != nil {
		was = "the Caddyfile's storage"
	}
	cfg["storage"] = map[string]any{"module": "file_system", "root": d.storage}
	d.try.add(trySetting{Field: "storage", Value: d.storage + " (removed at the end)", Was: was})
	admin, _ := cfg["admin"].(map[string]any)
	if admin == nil {
		admin = map[string]any{}
		cfg["admin"] = admin
	}
	admin["config"] = map[string]any{"persist": false}
	// A localhost site's certificate comes from Caddy's own CA: trying a
	// Caddyfile must not ask for a password to install it system-wide.
	if apps, ok := cfg["apps"].(map[string]any); ok {
		apps["pki"] = map[string]any{"certificate_authorities": map[string]any{"local": map[string]any{"install_trust": false}}}
	}

	for name, v := range set {
		if err := d.setenv(name, v); err != nil {
			return err
		}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	for _, m := range envAnywhere.FindAllSubmatch(cfgJSON, -1) {
		if name := string(m[1]); !slices.Contains(d.try.unset, name) {
			if _, ok := os.LookupEnv(name); !ok {
				d.try.unset = append(d.try.unset, name)
			}
		}
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		if len(d.try.unset) > 0 {
			return fmt.Errorf("starting Caddy: %w (not set in the environment: %s)", err, strings.Join(d.try.unset, ", "))
		}
		return fmt.Errorf("starting Caddy: %w", err)
	}
	d.caddyUp = true
	return nil
}

// add records s once: several sgid blocks may use the same variables.
func (t *trying) add(s trySetting) {
	if !slices.Contains(t.settings, s) {
		t.settings = append(t.settings, s)
	}
}

// siteURLs reads the site addresses of a Caddyfile as URLs, as Caddy reads
// them: https unless the address says http or port 80.
func siteURLs(filename string, body []byte) ([]string, error) {
	blocks, err := caddyfile.Parse(filename, body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", filename, err)
	}
	var urls []string
	for _, b := range blocks {
		if b.IsNamedRoute {
			continue
		}
		for _, key := range b.GetKeysText() {
			a, err := httpcaddyfile.ParseAddress(key)
			if err != nil {
				return nil, fmt.Errorf("%s: site address %q: %w", filename, key, err)
			}
			scheme := a.Scheme
			if scheme == "" {
				scheme = "https"
				if a.Port == "80" {
					scheme = "http"
				}
			}
			host := a.Host
			if host == "" {
				host = "localhost"
			}
			if a.Port != "" && a.Port != map[string]string{"http": "80", "https": "443"}[scheme] {
				host = net.JoinHostPort(host, a.Port)
			}
			urls = append(urls, scheme+"://"+host)
		}
	}
	return urls, nil
}

// tryIntro says what the try mode set and where to go.
func (d *Demo) tryIntro(w io.Writer) {
	t := d.try
	fmt.Fprintf(w, "caddy-sgid: %s against a fake sgID server, on this machine.\n\n", t.path)
	fmt.Fprintf(w, "  fake sgID server  %s  (a persona chooser; every person is fictional)\n\n", d.SgIDURL)
	fmt.Fprintf(w, "Set in this process's environment for the sgid handler:\n")
	for _, s := range t.settings {
		if s.Env == "" {
			continue
		}
		value, what := s.Value, s.Field
		if s.Secret {
			value, what = "(not shown)", s.Field+": the fake's"
		}
		if s.Was != "" {
			what += ", in place of " + s.Was
		}
		fmt.Fprintf(w, "  %s=%s  # %s\n", s.Env, value, what)
	}
	fmt.Fprintf(w, "Changed in the adapted config (the Caddyfile is not touched):\n")
	for _, s := range t.settings {
		if s.Env == "" {
			fmt.Fprintf(w, "  %-8s %s, in place of %s\n", s.Field, s.Value, s.Was)
		}
	}
	if len(t.unset) > 0 {
		fmt.Fprintf(w, "\nUsed by the config but not set in the environment: %s\n", strings.Join(t.unset, ", "))
	}
	fmt.Fprintf(w, "\nThe Caddyfile's sites:\n")
	remote := false
	for _, u := range t.sites {
		fmt.Fprintf(w, "  %s\n", u)
		remote = remote || !onThisMachine(u)
	}
	if remote {
		fmt.Fprintf(w, "A site named for another machine is not reachable here as it is: to try it on this one,\n"+
			"give it an address such as http://localhost:8080 (the fake sgID accepts any redirect URL).\n")
	}
	fmt.Fprintf(w, "\nOpen a site in a browser and pick a persona. Ctrl-C stops.\n")
}

// onThisMachine reports whether a site URL names this machine.
func onThisMachine(rawURL string) bool {
	_, hostPort, _ := strings.Cut(rawURL, "://")
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// setenv sets an environment variable for the life of the demo; Close puts
// back what was there.
func (d *Demo) setenv(name, value string) error {
	if _, saved := d.oldEnv[name]; !saved {
		if old, ok := os.LookupEnv(name); ok {
			d.oldEnv[name] = &old
		} else {
			d.oldEnv[name] = nil
		}
	}
	if err := os.Setenv(name, value); err != nil {
		return fmt.Errorf("setting %s: %w", name, err)
	}
	return nil
}
