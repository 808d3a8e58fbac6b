package caddysgid

import (
	"errors"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/sgid"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("sgid", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("sgid", httpcaddyfile.After, "forward_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	sgid [<matcher>] {
//		client_id          <id>                 # required
//		client_secret      <secret>             # required; use {env.*} or {file.*}
//		private_key        <pem>                # required; {file./etc/sgid/private.pem} or {env.SGID_PRIVATE_KEY}
//		hostname           <url>                # default https://api.id.gov.sg
//		redirect_uri       <url>                # default <site's scheme>://<site's host[:port]>/.sgid/callback
//		scope              <scope...>           # default openid myinfo.name; must include openid
//		forward            <field> [<header>]   # repeatable; default header X-Sgid-<Field-With-Dashes>
//		require            <field> <value...>   # repeatable; 403 unless the field has one of the values
//		anonymous                               # let requests without a session through, without identity
//		session_secret     <secret...>          # repeatable; the first encrypts, all decrypt; default: generated, kept in storage
//		session_lifetime   <duration>           # default 12h
//		idle_timeout       <duration>           # default 30m
//		cookie_name        <name>               # default sgid_session (__Host- prefixed on HTTPS)
//		signing_key        <pem...>             # repeatable; ES256 assertion key, the first signs; default: generated, kept in storage
//		signing_secret     <secret>             # HS256 assertion with a shared secret instead
//		audience           <aud>                # assertion aud; default the site's host[:port]
//		assertion_lifetime <duration>           # default 5m
//		timeout            <duration>           # each call to sgID; default 10s
//		clock_skew         <duration>           # ID token time tolerance; default 60s
//		revocation_store   <storage|redis-url>  # where logouts are shared; default storage (Caddy's)
//		revocation_poll    <duration>           # full reload of revocations and stored keys; default 10s
//		form_replay        <off|size>           # keep a form sent after the session ended, across the login; default 64KiB
//	}
//
// Fields are scope names (myinfo.name) or sub; a field that is forwarded or
// required must be in scope. session_lifetime, idle_timeout and
// assertion_lifetime are at least 1s, idle_timeout at most the session
// lifetime, clock_skew at most 10m. An error names the line of the
// subdirective at fault, or of sgid when a required one is missing; an
// unrecognized subdirective gets the nearest one as a hint ("did you mean
// client_id?"), and a private_key or signing_key that is a file's path
// (/etc/sgid/private.pem) is refused with the {file.*} placeholder that reads
// it. A scope outside sgID's data catalog (catalog.go) is a WARN at
// provisioning, with the nearest catalog name, not an error: sgID adds
// scopes over time.
//
// Provisioning (caddy validate) also refuses an sgid that the login's
// requests cannot reach: a request for /.sgid/callback, /.sgid/login and
// /.sgid/logout on the site's host is run through the matchers of every
// route around sgid, and one that leaves it out (route /app/* { sgid ... })
// is an error naming that matcher (reach.go). Matchers that read more than
// the path, host, method and scheme (expression, header, remote_ip...) are
// taken to match, and a second sgid of the same site after one they reach
// (a site-wide sgid, then handle /admin/* { sgid { require ... } }) is
// accepted. Every {env.*} or {file.*} placeholder that is empty or
// unset is named in one error, by name.
//
// The site (the origin of redirect_uri) is fixed when Caddy provisions the
// handler: the assertion's iss, what the cookies are bound to, and the only
// Host the handler serves (any other gets 421). Without redirect_uri it is the
// one host of the site block and the one port its server listens on; a site
// block without exactly one (:443, http://, several names, a wildcard) must
// set redirect_uri, and caddy validate says so. The path of redirect_uri
// must end in /.sgid/callback.
//
// A logout revokes its session, and /.sgid/logout?everywhere=1 every session
// of the user, on every instance sharing the revocation store: Caddy's
// storage (each instance reloads it every revocation_poll) or Redis
// (redis://[user:password@]host:port[/db], or rediss:// for TLS; changes
// reach every instance within a second).
//
// Keys kept in Caddy's storage (no session_secret or signing_key given) are
// reloaded every revocation_poll too, and rotated with caddy sgid-rotate: the
// new value reaches every instance before it seals or signs, and the old one
// stays for its overlap, so nobody is logged out.
//
// A form a user sends from a page of the site after the session ended (idle
// timeout) is kept, sealed, with the login it starts, and after it offered
// back on the gateway's page, whose one button sends it to the app again;
// only to the same user, and only text fields within form_replay.
//
// X-Sgid-Sub always carries the sub and X-Sgid-Assertion the signed JWT.
// Secrets should be {env.*} or {file.*} placeholders, which are expanded at
// provisioning and so never appear in the adapted JSON ({$VAR} is expanded when
// the Caddyfile is adapted: avoid it for secrets).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume the directive name
	directive := d.Token()
	if d.NextArg() {
		return d.ArgErr()
	}
	// at holds the token behind each value, so that an error from Validate can
	// name the line at fault: one per value for those that repeat (the same
	// token for every secret on one session_secret line).
	at := map[string][]caddyfile.Token{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		tok := d.Token()
		name := tok.Text
		values := 1 // how many values this line adds
		switch name {
		case "forward", "require", "session_secret", "signing_key":
		default:
			if len(at[name]) > 0 {
				return d.Errf("subdirective %s given more than once", name)
			}
		}

		switch name {
		case "client_id":
			if err := oneArg(d, &h.ClientID); err != nil {
				return err
			}
		case "client_secret":
			if err := oneArg(d, &h.ClientSecret); err != nil {
				return err
			}
		case "private_key":
			if err := oneArg(d, &h.PrivateKey); err != nil {
				return err
			}
		case "hostname":
			if err := oneArg(d, &h.Hostname); err != nil {
				return err
			}
			if _, err := sgid.Issuer(h.Hostname); err != nil && !hasPlaceholder(h.Hostname) {
				return d.Errf("hostname: %v", err)
			}
		case "redirect_uri":
			if err := oneArg(d, &h.RedirectURI); err != nil {
				return err
			}
			if _, err := gateway.ParseRedirectURI(h.RedirectURI); err != nil && !hasPlaceholder(h.RedirectURI) {
				return d.Err(err.Error())
			}
		case "scope":
			h.Scopes = d.RemainingArgs()
			if len(h.Scopes) == 0 {
				return d.ArgErr()
			}
		case "forward":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			f := Forward{Field: args[0]}
			if len(args) == 2 {
				f.Header = args[1]
			}
			h.Forward = append(h.Forward, f)
		case "require":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("require needs a field and at least one value")
			}
			h.Require = append(h.Require, Requirement{Field: args[0], Values: args[1:]})
		case "anonymous":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Anonymous = true
		case "session_secret":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.SessionSecrets = append(h.SessionSecrets, args...)
			values = len(args)
		case "signing_key":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.SigningKeys = append(h.SigningKeys, args...)
			values = len(args)
		case "signing_secret":
			if err := oneArg(d, &h.SigningSecret); err != nil {
				return err
			}
		case "audience":
			if err := oneArg(d, &h.Audience); err != nil {
				return err
			}
		case "cookie_name":
			if err := oneArg(d, &h.CookieName); err != nil {
				return err
			}
		case "session_lifetime":
			if err := durationArg(d, &h.SessionLifetime); err != nil {
				return err
			}
		case "idle_timeout":
			if err := durationArg(d, &h.IdleTimeout); err != nil {
				return err
			}
		case "assertion_lifetime":
			if err := durationArg(d, &h.AssertionLifetime); err != nil {
				return err
			}
		case "timeout":
			if err := durationArg(d, &h.Timeout); err != nil {
				return err
			}
		case "clock_skew":
			if err := durationArg(d, &h.ClockSkew); err != nil {
				return err
			}
		case "revocation_store":
			if err := oneArg(d, &h.RevocationStore); err != nil {
				return err
			}
		case "revocation_poll":
			if err := durationArg(d, &h.RevocationPoll); err != nil {
				return err
			}
		case "form_replay":
			if err := oneArg(d, &h.FormReplay); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized subdirective %q%s", name, didYouMean(name, subdirectives))
		}
		for range values {
			at[name] = append(at[name], tok)
		}
	}
	// Validate is Caddy's check too; running it here puts the line of the
	// subdirective at fault in the message.
	if err := h.Validate(); err != nil {
		return errorAt(directive, at, err)
	}
	return nil
}

// subdirectives are the names UnmarshalCaddyfile's switch accepts, for the
// hint an unrecognized one gets; caddyfile_docs_test.go keeps the two equal.
var subdirectives = []string{
	"client_id", "client_secret", "private_key", "hostname", "redirect_uri", "scope",
	"forward", "require", "anonymous", "session_secret", "signing_key", "signing_secret",
	"audience", "cookie_name", "session_lifetime", "idle_timeout", "assertion_lifetime",
	"timeout", "clock_skew", "revocation_store", "revocation_poll", "form_replay",
}

// errorAt puts the line of the subdirective a Validate error concerns on the
// error, as d.Err would there; an error about none (a missing client_id) gets
// the line of the directive.
func errorAt(directive caddyfile.Token, at map[string][]caddyfile.Token, err error) error {
	tok := directive
	var ce *configError
	if errors.As(err, &ce) && ce.index < len(at[ce.subdirective]) {
		tok = at[ce.subdirective][ce.index]
	}
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.WrapErr(err)
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if *dst == "" {
		return d.Errf("%s must not be empty", name)
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: bad duration %q: %v", name, s, err)
	}
	if dur <= 0 {
		return d.Errf("%s must be positive", name)
	}
	*dst = caddy.Duration(dur)
	return nil
}
