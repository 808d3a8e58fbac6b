package sgidtest

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

// chooserLinks returns the page's links by what they lead to: a persona ID,
// or "cancel".
func chooserLinks(t *testing.T, page string) map[string]string {
	t.Helper()
	links := map[string]string{}
	for _, m := range hrefRE.FindAllStringSubmatch(page, -1) {
		href := html.UnescapeString(m[1])
		switch _, after, _ := strings.Cut(href, "persona="); {
		case strings.Contains(href, "cancel=1"):
			links["cancel"] = href
		case after != "":
			links[after] = href
		}
	}
	return links
}

func TestChooser(t *testing.T) {
	// An odd client ID shows whether the page escapes what it prints.
	s := Start(t, Options{Chooser: true, Client: Client{ID: `<b>client</b>&"x"`}})
	showPage := func(t *testing.T, scope string) (string, map[string]string) {
		t.Helper()
		r := authorize(t, s, authorizeQuery(s, scope, newPKCE()))
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("chooser: status %d, %s", r.StatusCode, r.Header.Get("Content-Type"))
		}
		return string(r.body), chooserLinks(t, string(r.body))
	}

	t.Run("lists personas and requested fields, escaped", func(t *testing.T) {
		page, links := showPage(t, "openid myinfo.name myinfo.workpass_status")
		for _, p := range Personas() {
			if !strings.Contains(page, html.EscapeString(p.Label)) {
				t.Errorf("page lacks %q", p.Label)
			}
			if links[p.ID] == "" {
				t.Errorf("no link for %s", p.ID)
			}
		}
		if !strings.Contains(page, "myinfo.workpass_status") || strings.Contains(page, "<code>openid</code>") {
			t.Error("page should list the requested fields but openid")
		}
		if strings.Contains(page, "<b>client</b>") || !strings.Contains(page, "&lt;b&gt;client&lt;/b&gt;") {
			t.Error("client ID not HTML-escaped")
		}
		if strings.Contains(page, "<script") || strings.Contains(page, "src=") {
			t.Error("page loads something")
		}
		// Only the foreign worker has a work pass: the others show NA.
		if n := strings.Count(page, "(NA: no data)"); n != len(Personas())-1 {
			t.Errorf("%d NA markers, want %d", n, len(Personas())-1)
		}
	})
	t.Run("continue logs in as the chosen persona", func(t *testing.T) {
		p := newPKCE()
		r := authorize(t, s, authorizeQuery(s, "openid myinfo.name", p))
		link := chooserLinks(t, string(r.body))["maria-dela-cruz"]
		rq := redirectQuery(t, get(t, s.URL()+link, nil))
		if rq.Get("state") != "state-123" || rq.Get("code") == "" {
			t.Fatalf("redirect query %v", rq)
		}
		tok := postToken(t, s, tokenForm(s, rq.Get("code"), p))
		var tr tokenResponse
		mustUnmarshal(t, tok.body, &tr)
		if got := decryptUserInfo(t, fetchUserInfo(t, s, tr.AccessToken), s.ClientKey())["myinfo.name"]; got != "MARÍA JOSÉ DELA CRUZ" {
			t.Errorf("name %q", got)
		}
		if again := get(t, s.URL()+link, nil); again.StatusCode != http.StatusBadRequest || again.Header.Get("Location") != "" {
			t.Errorf("second use of a chooser link: status %d, want 400 without a redirect", again.StatusCode)
		}
	})
	t.Run("cancel is access_denied", func(t *testing.T) {
		_, links := showPage(t, "openid")
		rq := redirectQuery(t, get(t, s.URL()+links["cancel"], nil))
		if rq.Get("error") != "access_denied" || rq.Get("error_description") == "" || rq.Get("state") != "state-123" || rq.Get("code") != "" {
			t.Errorf("redirect query %v", rq)
		}
	})
	t.Run("unknown persona or pending id", func(t *testing.T) {
		_, links := showPage(t, "openid")
		for _, href := range []string{
			strings.Replace(links["tan-ah-kow"], "persona=tan-ah-kow", "persona=nobody", 1),
			"/v2/oauth/authorize/consent?pending=forged&persona=tan-ah-kow",
		} {
			if r := get(t, s.URL()+href, nil); r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Errorf("%s: status %d, want 400 without a redirect", href, r.StatusCode)
			}
		}
	})
	t.Run("SetChooser off returns to auto-consent", func(t *testing.T) {
		s.SetChooser(false)
		defer s.SetChooser(true)
		if r := authorize(t, s, authorizeQuery(s, "openid", newPKCE())); r.StatusCode != http.StatusFound {
			t.Errorf("status %d, want 302", r.StatusCode)
		}
	})
}
