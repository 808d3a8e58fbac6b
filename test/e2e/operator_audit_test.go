package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// readmeAuditSnippet is the README's global options that route the audit log
// to its own file, as the lines inside the global block, with the file at
// path.
func readmeAuditSnippet(t *testing.T, path string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(readme), "```\n")[1:] {
		if !strings.Contains(block, "include http.handlers.sgid.audit") {
			continue
		}
		inner, ok := strings.CutPrefix(strings.TrimSpace(block), "{\n")
		inner, ok2 := strings.CutSuffix(inner, "\n}")
		if !ok || !ok2 || !strings.Contains(inner, "/var/log/caddy/sgid-audit.log") {
			t.Fatalf("the README's audit snippet is not a global options block writing /var/log/caddy/sgid-audit.log:\n%s", block)
		}
		return strings.ReplaceAll(inner, "/var/log/caddy/sgid-audit.log", path)
	}
	t.Fatal("the README has no snippet that includes http.handlers.sgid.audit")
	return ""
}

// The README's snippet routes the audit log to a file of its own, which then
// holds one line per login, failed login, denial and logout, with the site,
// the pairwise sub, the event, the reason and the error reference, and not
// one value of the users' data, nor a token or a cookie.
func TestAuditLogGoesToItsOwnFileAsTheReadmeShowsAndHoldsNoPersonalData(t *testing.T) {
	path := filepath.Join(tempDir(t), "sgid-audit.log")
	srv := sgidtest.Start(t, sgidtest.Options{Persona: adultPersona})
	g := newGateway(t, gatewayOptions{sgid: srv, directives: adultsOnly, globalExtra: readmeAuditSnippet(t, path)})

	adult := g.newBrowser()
	g.login(adult, "/")
	adultCookies := adult.cookies(g.base)
	adult.get(g.base + "/.sgid/logout")

	srv.SetPersona(minorPersona)
	minor := g.newBrowser()
	_, denied := minor.get(g.base + "/reports")
	minorCookies := minor.cookies(g.base)
	_, stale := g.newBrowser().get(g.base + "/.sgid/callback?state=forged&code=x")

	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	site := `"site":"` + g.base + `"`
	adultSub, minorSub := `"sub":"`+g.subOf(adultPersona)+`"`, `"sub":"`+g.subOf(minorPersona)+`"`
	awaitLine(t, "the adult's login", read, `"msg":"login completed"`, `"event":"login"`, site, adultSub)
	awaitLine(t, "the adult's logout", read, `"msg":"sessions revoked"`, `"event":"logout"`, site, adultSub)
	awaitLine(t, "the minor's login", read, `"msg":"login completed"`, site, minorSub)
	awaitLine(t, "the minor's denial", read, `"msg":"access denied"`, `"event":"access_denied"`, site, minorSub,
		`"reason":"require"`, `"error_id":"`+referenceOn(t, denied)+`"`)
	awaitLine(t, "the stale link", read, `"msg":"login failed"`, `"event":"login_failed"`, site,
		`"reason":"no_attempt"`, `"error_id":"`+referenceOn(t, stale)+`"`)

	text := read()
	forbidden := map[string]string{}
	for _, p := range sgidtest.Personas() {
		if p.ID != adultPersona && p.ID != minorPersona {
			continue
		}
		for field, v := range p.Data {
			if len(v) > 5 {
				forbidden[p.ID+" "+field] = v
			}
		}
	}
	for _, c := range append(adultCookies, minorCookies...) {
		forbidden["cookie "+c.Name] = c.Value
	}
	forbidden["a JWT"] = "eyJ"
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["logger"] != "http.handlers.sgid.audit" {
			t.Errorf("the audit file has a line of another logger: %.200s", line)
		}
		for what, v := range forbidden {
			if strings.Contains(line, v) {
				t.Errorf("the audit log holds %s: %.200s", what, redact(line, v))
			}
		}
	}
}
