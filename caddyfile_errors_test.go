package caddysgid

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var caddyfileLineRE = regexp.MustCompile(`Caddyfile:(\d+)\b`)

// TestCaddyfileErrors pins the message of each mistake and the line it names:
// the subdirective at fault, or the sgid directive when the fault is one that
// is missing. Checks made after the whole block is read (Validate's) count too.
func TestCaddyfileErrors(t *testing.T) {
	const (
		idLine     = "\t\tclient_id {env.SGID_CLIENT_ID}\n"
		secretLine = "\t\tclient_secret {env.SGID_CLIENT_SECRET}\n"
		keyLine    = "\t\tprivate_key {file./etc/sgid/private.pem}\n"
	)
	// site puts body in an sgid block: the sgid line is line 2 and the block's
	// first line is 3.
	site := func(body string) string {
		return ":8080 {\n\tsgid {\n" + body + "\t}\n}\n"
	}
	// withCreds is site with the three required subdirectives first: body
	// starts at line 6.
	withCreds := func(body string) string {
		return site(idLine + secretLine + keyLine + body)
	}
	tests := []struct {
		name      string
		caddyfile string
		want      string
		line      int
	}{
		{name: "unknown subdirective", caddyfile: withCreds("\t\tclient_name x\n"), want: `unrecognized subdirective "client_name"`, line: 6},
		{name: "misspelt subdirective", caddyfile: withCreds("\t\tanonymous\n\t\tclient_ID x\n"), want: `unrecognized subdirective "client_ID"; did you mean "client_id"?`, line: 7},
		{name: "subdirective with a letter left out", caddyfile: withCreds("\t\tsesion_secret {env.S}\n"), want: `unrecognized subdirective "sesion_secret"; did you mean "session_secret"?`, line: 6},
		{name: "private_key a bare path", caddyfile: site(idLine + secretLine + "\t\tprivate_key /etc/sgid/private.pem\n"), want: "private_key is the path /etc/sgid/private.pem, not the key's PEM text: write {file./etc/sgid/private.pem} to read the file", line: 5},
		{name: "private_key a relative path", caddyfile: site(idLine + "\t\tprivate_key private.pem\n" + secretLine), want: "write {file.private.pem}", line: 4},
		{name: "signing_key a bare path", caddyfile: withCreds("\t\tsigning_key {file./k.pem} ./assertion.pem\n"), want: "signing_key #2 is the path ./assertion.pem, not the key's PEM text: write {file../assertion.pem}", line: 6},
		{name: "missing client_id", caddyfile: site(secretLine + keyLine), want: "client_id is required", line: 2},
		{name: "missing client_secret", caddyfile: site(idLine + keyLine), want: "client_secret is required", line: 2},
		{name: "missing private_key", caddyfile: site(idLine + secretLine), want: "private_key is required", line: 2},
		{name: "no block at all", caddyfile: ":8080 {\n\tsgid\n}\n", want: "client_id is required", line: 2},
		{name: "argument after sgid", caddyfile: ":8080 {\n\tsgid extra {\n" + idLine + secretLine + keyLine + "\t}\n}\n", want: "wrong argument count", line: 2},
		{name: "client_id with two arguments", caddyfile: site("\t\tclient_id a b\n" + secretLine + keyLine), want: "wrong argument count", line: 3},
		{name: "empty client_id", caddyfile: site("\t\tclient_id \"\"\n" + secretLine + keyLine), want: "client_id must not be empty", line: 3},
		{name: "client_id given twice", caddyfile: withCreds("\t\tclient_id {env.OTHER}\n"), want: "subdirective client_id given more than once", line: 6},
		{name: "timeout given twice", caddyfile: withCreds("\t\ttimeout 5s\n\t\ttimeout 6s\n"), want: "subdirective timeout given more than once", line: 7},
		{name: "anonymous given twice", caddyfile: withCreds("\t\tanonymous\n\t\tanonymous\n"), want: "subdirective anonymous given more than once", line: 7},
		{name: "anonymous with an argument", caddyfile: withCreds("\t\tanonymous true\n"), want: "wrong argument count", line: 6},

		{name: "revocation_store neither storage nor Redis", caddyfile: withCreds("\t\trevocation_store memcached://cache:11211\n"), want: "revocation_store: want storage, or a Redis URL (redis:// or rediss://)", line: 6},
		{name: "revocation_store Redis URL that does not parse", caddyfile: withCreds("\t\trevocation_store redis://:hunter2@cache:port\n"), want: "revocation_store: the Redis URL does not parse", line: 6},
		{name: "revocation_poll under a second", caddyfile: withCreds("\t\trevocation_poll 100ms\n"), want: "revocation_poll must be at least 1s", line: 6},

		{name: "bad duration", caddyfile: withCreds("\t\tsession_lifetime twelve_hours\n"), want: `session_lifetime: bad duration "twelve_hours"`, line: 6},
		{name: "duration in two words", caddyfile: withCreds("\t\tsession_lifetime 12 h\n"), want: "wrong argument count", line: 6},
		{name: "negative duration", caddyfile: withCreds("\t\ttimeout -5s\n"), want: "timeout must be positive", line: 6},
		{name: "zero duration", caddyfile: withCreds("\t\tidle_timeout 0s\n"), want: "idle_timeout must be positive", line: 6},
		{name: "session_lifetime under a second", caddyfile: withCreds("\t\tanonymous\n\t\tsession_lifetime 500ms\n"), want: "session_lifetime must be at least 1s", line: 7},
		{name: "clock_skew over 10m", caddyfile: withCreds("\t\tclock_skew 11m\n\t\tanonymous\n"), want: "clock_skew must be at most 10m", line: 6},
		{name: "idle_timeout longer than session_lifetime", caddyfile: withCreds("\t\tsession_lifetime 1h\n\t\tidle_timeout 2h\n\t\tanonymous\n"), want: "idle_timeout 2h0m0s is longer than the session lifetime 1h0m0s", line: 7},
		{name: "idle_timeout before a shorter session_lifetime", caddyfile: withCreds("\t\tidle_timeout 2h\n\t\tsession_lifetime 1h\n"), want: "idle_timeout 2h0m0s is longer than the session lifetime 1h0m0s", line: 6},
		{name: "idle_timeout longer than the default session_lifetime", caddyfile: withCreds("\t\tidle_timeout 13h\n\t\tanonymous\n"), want: "idle_timeout 13h0m0s is longer than the session lifetime 12h0m0s", line: 6},

		{name: "scope without openid", caddyfile: withCreds("\t\tscope myinfo.name myinfo.email\n"), want: `must include "openid"`, line: 6},
		{name: "scope token with a space", caddyfile: withCreds("\t\tscope openid \"myinfo.name myinfo.email\"\n"), want: `scope "myinfo.name myinfo.email" is not a valid scope token`, line: 6},
		{name: "scope listed twice", caddyfile: withCreds("\t\tscope openid myinfo.name openid\n"), want: `scope "openid" is listed twice`, line: 6},
		{name: "scope without values", caddyfile: withCreds("\t\tscope\n"), want: "wrong argument count", line: 6},
		{name: "hostname without a scheme", caddyfile: withCreds("\t\thostname api.id.gov.sg\n"), want: `hostname "api.id.gov.sg" is not an http(s) URL`, line: 6},
		{name: "hostname with credentials", caddyfile: withCreds("\t\thostname https://user:pass@api.id.gov.sg\n"), want: "hostname must not hold credentials", line: 6},
		{name: "redirect_uri without a host", caddyfile: withCreds("\t\tredirect_uri https://\n"), want: `redirect_uri: redirect URI "https://" is not an absolute http(s) URL`, line: 6},
		{name: "redirect_uri elsewhere than the callback", caddyfile: withCreds("\t\tredirect_uri https://app.example/auth/callback\n"), want: `redirect_uri: its path "/auth/callback" must end in /.sgid/callback`, line: 6},
		{name: "redirect_uri not absolute", caddyfile: withCreds("\t\tredirect_uri /.sgid/callback\n"), want: `redirect_uri: redirect URI "/.sgid/callback" is not an absolute http(s) URL`, line: 6},
		{name: "cookie_name with the __Host- prefix", caddyfile: withCreds("\t\tcookie_name __Host-x\n\t\tanonymous\n"), want: `cookie_name "__Host-x"`, line: 6},

		{name: "forward with three arguments", caddyfile: withCreds("\t\tforward myinfo.name X-Name extra\n"), want: "wrong argument count", line: 6},
		{name: "forward without arguments", caddyfile: withCreds("\t\tforward\n"), want: "wrong argument count", line: 6},
		{name: "forward onto X-Sgid-Sub", caddyfile: withCreds("\t\tforward myinfo.name X-Sgid-Sub\n"), want: "header X-Sgid-Sub is reserved", line: 6},
		{name: "forward onto the assertion header, spelt with underscores", caddyfile: withCreds("\t\tforward myinfo.name x_sgid_assertion\n"), want: "header x_sgid_assertion is reserved", line: 6},
		{name: "forward onto an invalid header name", caddyfile: withCreds("\t\tforward myinfo.name \"X Bad\"\n"), want: `"X Bad" is not a valid header name`, line: 6},
		{name: "forward sub without a header", caddyfile: withCreds("\t\tforward sub\n"), want: "sub is always sent as X-Sgid-Sub", line: 6},
		{name: "forward of a field not in scope", caddyfile: withCreds("\t\tforward myinfo.email\n\t\tanonymous\n"), want: "forward myinfo.email: the field is not requested: add it to scope", line: 6},
		{name: "second forward of a field not in scope", caddyfile: withCreds("\t\tforward myinfo.name\n\t\tforward myinfo.email X-Email\n\t\tanonymous\n"), want: "forward myinfo.email: the field is not requested", line: 7},
		{name: "two forwards onto one header", caddyfile: withCreds("\t\tscope openid myinfo.name myinfo.email\n\t\tforward myinfo.name X-Person\n\t\tforward myinfo.email x-person\n\t\tanonymous\n"), want: "header x-person is used for both myinfo.name and myinfo.email", line: 8},
		{name: "two forwards onto one header, underscore for dash", caddyfile: withCreds("\t\tscope openid myinfo.name myinfo.email\n\t\tforward myinfo.name X-Person-Name\n\t\tforward myinfo.email X_Person_Name\n"), want: "header X_Person_Name is used for both myinfo.name and myinfo.email", line: 8},
		{name: "forward onto another field's default header", caddyfile: withCreds("\t\tscope openid myinfo.name myinfo.email\n\t\tforward myinfo.name\n\t\tforward myinfo.email X-Sgid-Myinfo-Name\n"), want: "header X-Sgid-Myinfo-Name is used for both myinfo.name and myinfo.email", line: 8},
		{name: "require with one argument", caddyfile: withCreds("\t\trequire myinfo.is_age_above_18\n"), want: "require needs a field and at least one value", line: 6},
		{name: "require on a field not in scope", caddyfile: withCreds("\t\trequire myinfo.is_age_above_18 true\n\t\tanonymous\n"), want: "require myinfo.is_age_above_18: the field is not requested", line: 6},
		{name: "second require on a field not in scope", caddyfile: withCreds("\t\trequire myinfo.name Tan\n\t\trequire myinfo.is_age_above_18 true\n"), want: "require myinfo.is_age_above_18: the field is not requested", line: 7},

		{name: "literal session_secret too short", caddyfile: withCreds("\t\tsession_secret short\n\t\tanonymous\n"), want: "session_secret #1 is 5 characters", line: 6},
		{name: "short session_secret after two on one line", caddyfile: withCreds("\t\tsession_secret {env.A} {env.B}\n\t\tanonymous\n\t\tsession_secret short\n"), want: "session_secret #3 is 5 characters", line: 8},
		{name: "short session_secret second on its line", caddyfile: withCreds("\t\tsession_secret {env.A}\n\t\tsession_secret {env.B} short\n\t\tanonymous\n"), want: "session_secret #3 is 5 characters", line: 7},
		{name: "literal signing_secret too short", caddyfile: withCreds("\t\tsigning_secret short\n\t\tanonymous\n"), want: "signing_secret is 5 characters", line: 6},
		{name: "signing_key with signing_secret", caddyfile: withCreds("\t\tsigning_key {file./k.pem}\n\t\tsigning_secret {env.H}\n\t\tanonymous\n"), want: "signing_key and signing_secret are exclusive", line: 7},
		{name: "signing_secret with signing_key after it", caddyfile: withCreds("\t\tsigning_secret {env.H}\n\t\tsigning_key {file./k.pem}\n"), want: "signing_key and signing_secret are exclusive", line: 6},
		{name: "in an imported snippet", caddyfile: "(gate) {\n\tsgid {\n" + idLine + secretLine + keyLine + "\t\tforward myinfo.email\n\t\tanonymous\n\t}\n}\n:8080 {\n\timport gate\n}\n", want: "the field is not requested: add it to scope, at Caddyfile:6 import chain ['Caddyfile:11 (import gate)']", line: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := adaptCaddyfile(t, tt.caddyfile)
			if err == nil {
				t.Fatalf("want an error containing %q, got none; adapted:\n%s", tt.want, out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("want an error containing %q, got %q", tt.want, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats a password from the Caddyfile: %q", err)
			}
			if m := caddyfileLineRE.FindStringSubmatch(err.Error()); m == nil || m[1] != strconv.Itoa(tt.line) {
				t.Errorf("want the error to point at Caddyfile:%d, got %q\n%s", tt.line, err, numbered(tt.caddyfile))
			}
		})
	}
}

// numbered shows a Caddyfile with line numbers, to read a failure against.
func numbered(caddyfile string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(caddyfile, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, line)
	}
	return b.String()
}
