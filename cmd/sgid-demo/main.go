// Command sgid-demo shows caddy-sgid working with one command and no sgID
// credentials: it starts a fake sgID server (sgidtest, with a persona chooser),
// Caddy with the sgid handler configured from the Caddyfile beside this file,
// and a small legacy app behind the gateway that shows the identity headers it
// receives and whether their signed assertion verifies. Everything listens on
// 127.0.0.1; Ctrl-C stops it.
//
//	go run ./cmd/sgid-demo [-port 8080] [-sgid-port 0] [-app-port 0]
//
// With -caddyfile it runs an operator's own Caddyfile instead, against the
// fake sgID server, before there are sgID credentials: it sets the {env.*}
// credentials the Caddyfile's sgid blocks name to the fake's, points their
// hostname at the fake, and says what it set (try.go).
//
//	go run ./cmd/sgid-demo -caddyfile ./Caddyfile [-sgid-port 0]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	var opts Options
	flag.IntVar(&opts.Port, "port", 8080, "the gateway's port on 127.0.0.1 (0: any free port)")
	flag.IntVar(&opts.SgIDPort, "sgid-port", 0, "the fake sgID server's port (0: any free port)")
	flag.IntVar(&opts.AppPort, "app-port", 0, "the legacy app's port (0: any free port)")
	flag.StringVar(&opts.Caddyfile, "caddyfile", "", "run this Caddyfile (yours) against the fake sgID server, instead of the demo's gateway and app")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: sgid-demo [flags]\n"+
			"       sgid-demo -caddyfile FILE [-sgid-port N]\n\n"+
			"Runs sgID login (against a fake sgID server) in front of a small app, all on 127.0.0.1;\n"+
			"with -caddyfile, runs your Caddyfile against the fake sgID server, its credentials set to the fake's.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	usageError := flag.NArg() > 0
	if opts.Caddyfile != "" {
		flag.Visit(func(f *flag.Flag) {
			// The Caddyfile says where the gateway listens, and there is no app.
			usageError = usageError || f.Name == "port" || f.Name == "app-port"
		})
	}
	if usageError {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second Ctrl-C while shutting down kills the process the usual way.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sgid-demo:", err)
		os.Exit(1)
	}
}

// run starts the demo, tells stdout how to use it, and stops it when ctx ends.
func run(ctx context.Context, opts Options, stdout io.Writer) error {
	for _, p := range []int{opts.Port, opts.SgIDPort, opts.AppPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("port %d is out of range", p)
		}
	}
	d, err := Start(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	if d.try != nil {
		d.tryIntro(stdout)
	} else {
		d.intro(stdout)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping.")
	return d.Close()
}

// intro prints the Caddyfile as shipped, what its placeholders stand for, and
// where to go, the URL to open last so it is what the terminal shows.
func (d *Demo) intro(w io.Writer) {
	var env strings.Builder
	for _, kv := range d.Env {
		fmt.Fprintf(&env, "  %s=%s\n", kv[0], kv[1])
	}
	fmt.Fprintf(w, `caddy-sgid demo: sgID login in front of a legacy app, all on 127.0.0.1.

The gateway runs this Caddyfile (cmd/sgid-demo/Caddyfile):
----------------------------------------------------------------------
%s----------------------------------------------------------------------
with
%s  SGID_CLIENT_SECRET, SGID_PRIVATE_KEY: the fake sgID's client credentials

  fake sgID server  %s  (a persona chooser; every person is fictional)
  legacy app        %s  (direct, without the gateway; try
                    curl -H 'X-Sgid-Sub: forged' %s/ )
  gateway           %s

Open %s/ in a browser and pick a persona. Ctrl-C stops the demo.
`, shippedCaddyfile, env.String(), d.SgIDURL, d.AppURL, d.AppURL, d.GatewayURL, d.GatewayURL)
}
