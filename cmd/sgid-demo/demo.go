package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// The Caddyfile adapter, reverse_proxy and the rest of a standard Caddy.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The sgid handler.
	_ "github.com/sgidproxy/caddy-sgid"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// shippedCaddyfile is the gateway's configuration, shipped beside this file so that it
// can be read, printed and copied as it is.
//
//go:embed Caddyfile
var shippedCaddyfile []byte

// Options say where the demo listens, always on 127.0.0.1. Port 0 lets the OS
// choose.
type Options struct {
	Port     int // the gateway
	SgIDPort int // the fake sgID server
	AppPort  int // the legacy app, reachable directly too

	// Caddyfile, when set, is an operator's Caddyfile to run against the
	// fake sgID server instead of the demo's gateway and app (try.go); Port
	// and AppPort are then not used.
	Caddyfile string
}

// Demo is a running demo: a fake sgID server, Caddy with the sgid handler, and a
// legacy app behind it.
type Demo struct {
	GatewayURL string // http://127.0.0.1:<port>, what a browser opens
	SgIDURL    string
	AppURL     string // the app without the gateway in front

	// Env is what the Caddyfile's placeholders were set to, secrets left out,
	// in the order the Caddyfile's header comment lists them.
	Env [][2]string

	sgid      *sgidtest.Server
	appL      net.Listener // closed by app.Shutdown once app serves
	app       *http.Server
	appDone   chan struct{}
	storage   string
	try       *trying // in the try mode
	oldEnv    map[string]*string
	caddyUp   bool
	closeOnce sync.Once
	closeErr  error
}

// running guards Caddy, which is one per process: its config is global.
var running atomic.Bool

// Start starts the demo. Close stops it.
func Start(opts Options) (*Demo, error) {
	if !running.CompareAndSwap(false, true) {
		return nil, errors.New("a demo is already running in this process (Caddy runs one config at a time)")
	}
	d := &Demo{oldEnv: map[string]*string{}}
	start := d.start
	if opts.Caddyfile != "" {
		start = d.startTry
	}
	if err := start(opts); err != nil {
		d.Close() // undoes whatever start got done
		return nil, err
	}
	return d, nil
}

func (d *Demo) start(opts Options) error {
	// Caddy opens its own listeners, so find the port free first and hand it
	// over; another process could take it in between, which a demo can bear.
	// Checking matters even for a given port: Caddy listens with SO_REUSEPORT,
	// so a second demo (or any Caddy) on the same port would start without
	// error and the kernel would share the connections between the two.
	gatewayPort, err := freePort(opts.Port)
	if err != nil {
		return fmt.Errorf("gateway: %w (choose another with -port)", err)
	}
	d.GatewayURL = fmt.Sprintf("http://127.0.0.1:%d", gatewayPort)
	// The gateway serves this one origin (its site; another Host gets 421):
	// it is the one callback registered and the one issuer the app accepts.
	origins := []string{d.GatewayURL}

	sgidL, err := listen(opts.SgIDPort, "fake sgID server")
	if err != nil {
		return err
	}
	d.sgid, err = sgidtest.NewUnstartedServer(sgidtest.Options{
		Chooser: true,
		Client: sgidtest.Client{
			RedirectURIs: []string{origins[0] + "/.sgid/callback"},
		},
	})
	if err != nil {
		sgidL.Close()
		return fmt.Errorf("fake sgID server: %w", err)
	}
	d.sgid.StartOn(sgidL)
	d.SgIDURL = d.sgid.URL()

	if d.appL, err = listen(opts.AppPort, "legacy app"); err != nil {
		return err
	}
	d.AppURL = "http://" + d.appL.Addr().String()

	if d.storage, err = os.MkdirTemp("", "sgid-demo-"); err != nil {
		return fmt.Errorf("storage directory: %w", err)
	}
	d.Env = [][2]string{
		{"SGID_CLIENT_ID", d.sgid.ClientID()},
		{"SGID_HOSTNAME", d.SgIDURL},
		{"SGID_DEMO_PORT", strconv.Itoa(gatewayPort)},
		{"SGID_DEMO_UPSTREAM", d.appL.Addr().String()},
		{"SGID_DEMO_STORAGE", d.storage},
	}
	env := append([][2]string{
		{"SGID_CLIENT_SECRET", d.sgid.ClientSecret()},
		{"SGID_PRIVATE_KEY", sgidtest.EncodePKCS8(d.sgid.ClientKey())},
	}, d.Env...)
	// Caddy reads {$VAR} while adapting and {env.VAR} while provisioning, both
	// from the process environment.
	for _, kv := range env {
		if err := d.setenv(kv[0], kv[1]); err != nil {
			return err
		}
	}

	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(shippedCaddyfile, map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "sgid-demo: Caddyfile:%d: %s\n", w.Line, w.Message)
	}
	asked, err := askedFields(cfgJSON)
	if err != nil {
		return err
	}

	app := newLegacyApp(origins, d.GatewayURL+"/.sgid/jwks.json", asked)
	d.app = &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	d.appDone = make(chan struct{})
	go func() {
		defer close(d.appDone)
		d.app.Serve(d.appL) // returns ErrServerClosed on Shutdown
	}()

	if err := caddy.Load(cfgJSON, true); err != nil {
		return fmt.Errorf("starting Caddy: %w", err)
	}
	d.caddyUp = true
	return nil
}

// Close stops Caddy, the app and the fake sgID server, removes the storage
// directory and restores the environment. It is safe to call more than once.
func (d *Demo) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.caddyUp {
			errs = append(errs, caddy.Stop())
		}
		if d.app != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, d.app.Shutdown(ctx))
			cancel()
			<-d.appDone
		} else if d.appL != nil {
			d.appL.Close()
		}
		if d.sgid != nil {
			d.sgid.Close()
		}
		if d.storage != "" {
			errs = append(errs, os.RemoveAll(d.storage))
		}
		for k, v := range d.oldEnv {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
		running.Store(false)
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// askedFields returns the fields the sgid handler in an adapted config asks sgID
// for, openid left out: what the app lists as "the fields asked for".
func askedFields(cfgJSON []byte) ([]string, error) {
	var cfg any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("reading the adapted config: %w", err)
	}
	hs := findHandlers(cfg, "sgid")
	if len(hs) == 0 {
		return nil, errors.New("the Caddyfile has no sgid handler")
	}
	h := hs[0]
	scopes := []string{"openid", "myinfo.name"} // the handler's default
	if raw, ok := h["scopes"].([]any); ok {
		scopes = scopes[:0]
		for _, s := range raw {
			if s, ok := s.(string); ok {
				scopes = append(scopes, s)
			}
		}
	}
	var fields []string
	for _, s := range scopes {
		if s != "openid" {
			fields = append(fields, s)
		}
	}
	return fields, nil
}

// findHandlers walks a JSON value depth first for the objects whose "handler"
// is name, in the order of the config's arrays: the Caddyfile adapter nests
// handlers in subroutes.
func findHandlers(v any, name string) []map[string]any {
	var out []map[string]any
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == name {
			return []map[string]any{v}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out = append(out, findHandlers(v[k], name)...)
		}
	case []any:
		for _, c := range v {
			out = append(out, findHandlers(c, name)...)
		}
	}
	return out
}

func listen(port int, what string) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return l, nil
}

// freePort returns port if nothing listens on it on 127.0.0.1, or for 0 a port
// the OS picks.
func freePort(port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
