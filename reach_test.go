package caddysgid

import (
	"strings"
	"testing"
)

// TestProvisionRefusesASgidThatItsEndpointsDoNotReach: a sgid under a matcher
// that leaves out /.sgid/* fails provisioning (caddy validate), naming the
// matcher and the fix; one whose matchers let /.sgid/* through, or cannot be
// decided before a request arrives, provisions.
func TestProvisionRefusesASgidThatItsEndpointsDoNotReach(t *testing.T) {
	const block = `sgid {
			client_id test
			client_secret test-secret
			private_key {env.SGID_TEST_PRIVATE_KEY}
		}`
	const fix = "put sgid in a route that also matches /.sgid/*"
	tests := []struct {
		name string
		site string // the site block's body; <sgid> is the sgid block
		want string // "" for no error
	}{
		{"route with a path", "route /app/* {\n\t\t<sgid>\n\t\trespond ok\n\t}", "a route around it matches only path /app/*"},
		{"handle with a path", "handle /app/* {\n\t\t<sgid>\n\t\trespond ok\n\t}", "matches only path /app/*"},
		{"handle_path", "handle_path /app/* {\n\t\t<sgid>\n\t\trespond ok\n\t}", "matches only path /app/*"},
		{"sgid's own path matcher", "sgid /app/* {\n\t\tclient_id test\n\t\tclient_secret test-secret\n\t\tprivate_key {env.SGID_TEST_PRIVATE_KEY}\n\t}\n\trespond ok", "matches only path /app/*"},
		{"named matcher on handle", "@app path /app/* /api/*\n\thandle @app {\n\t\t<sgid>\n\t}", "matches only path /app/* /api/*"},
		{"nested, the outer route excludes", "handle /app/* {\n\t\troute {\n\t\t\t<sgid>\n\t\t}\n\t}", "matches only path /app/*"},
		{"path and an undecidable header", "@app {\n\t\tpath /app/*\n\t\theader X-Tenant a\n\t}\n\thandle @app {\n\t\t<sgid>\n\t}", "matches only header and path /app/*"},
		{"not the endpoints", "@gated not path /.sgid/*\n\tsgid @gated {\n\t\tclient_id test\n\t\tclient_secret test-secret\n\t\tprivate_key {env.SGID_TEST_PRIVATE_KEY}\n\t}", "matches only not (path /.sgid/*)"},
		{"method other than GET", "@posts method POST\n\thandle @posts {\n\t\t<sgid>\n\t}", "matches only method POST"},

		{"a second sgid of the site under a path", "<sgid>\n\thandle /admin/* {\n\t\tsgid {\n\t\t\tclient_id test\n\t\t\tclient_secret test-secret\n\t\t\tprivate_key {env.SGID_TEST_PRIVATE_KEY}\n\t\t\tscope openid myinfo.name\n\t\t\trequire myinfo.name Tan\n\t\t}\n\t}", ""},
		{"at the top of the site", "<sgid>\n\trespond ok", ""},
		{"in a route without a matcher", "route {\n\t\t<sgid>\n\t\trespond ok\n\t}", ""},
		{"matcher naming /.sgid/*", "@gated path /app/* /.sgid/*\n\tsgid @gated {\n\t\tclient_id test\n\t\tclient_secret test-secret\n\t\tprivate_key {env.SGID_TEST_PRIVATE_KEY}\n\t}", ""},
		{"in the catch-all handle", "handle /public/* {\n\t\trespond public\n\t}\n\thandle {\n\t\t<sgid>\n\t}", ""},
		{"not the public paths", "@private not path /public/*\n\thandle @private {\n\t\t<sgid>\n\t}", ""},
		{"path_regexp that matches", "@gated path_regexp ^/(app|\\.sgid)/\n\thandle @gated {\n\t\t<sgid>\n\t}", ""},
		{"an expression, undecidable", "@app expression `{path}.startsWith('/app')`\n\thandle @app {\n\t\t<sgid>\n\t}", ""},
		{"a header, undecidable", "@app header X-Tenant a\n\thandle @app {\n\t\t<sgid>\n\t}", ""},
		{"remote_ip, undecidable", "@office remote_ip 10.0.0.0/8\n\thandle @office {\n\t\t<sgid>\n\t}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := "http://app.example {\n\t" + strings.ReplaceAll(tt.site, "<sgid>", block) + "\n}\n"
			_, err := validateCaddyfile(t, site)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("want the config to provision, got %v\n%s", err, numbered(site))
			case tt.want == "":
			case err == nil:
				t.Errorf("want an error containing %q, got none\n%s", tt.want, numbered(site))
			default:
				for _, w := range []string{"the /.sgid/* endpoints do not reach sgid", tt.want, fix} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("want the error to contain %q, got %q", w, err)
					}
				}
			}
		})
	}
}
