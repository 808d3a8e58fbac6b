package sgidtest

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var (
	hrefRE     = regexp.MustCompile(`href="([^"]*)"`)
	fieldRowRE = regexp.MustCompile(`(?s)<tr><th><code>([^<]*)</code></th><td class="value">(.*?)</td></tr>`)
	detailsRE  = regexp.MustCompile(`(?s)^<details><summary>.*?</summary>(.*)</details>$`)
	buttonRE   = regexp.MustCompile(`<a class="button" href="[^"]*">([^<]*)</a>`)
)

// chooserShows reads a persona's part of the chooser page: the fields with
// the values it shows (unescaped; "NA" for a field without data), and the
// text of its button.
func chooserShows(t *testing.T, page, personaID string) (fields map[string]string, button string) {
	t.Helper()
	_, section, ok := strings.Cut(page, `<div class="persona" id="persona-`+personaID+`">`)
	if !ok {
		t.Fatalf("no section for %s", personaID)
	}
	section, _, _ = strings.Cut(section, "</div>")
	fields = map[string]string{}
	for _, m := range fieldRowRE.FindAllStringSubmatch(section, -1) {
		v := m[2]
		if d := detailsRE.FindStringSubmatch(v); d != nil {
			v = d[1]
		}
		if v == `<span class="na">NA: no data</span>` {
			v = "NA"
		}
		fields[m[1]] = html.UnescapeString(v)
	}
	b := buttonRE.FindStringSubmatch(section)
	if b == nil {
		t.Fatalf("no button for %s", personaID)
	}
	return fields, html.UnescapeString(b[1])
}

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
		if n := strings.Count(page, `<span class="na">NA: no data</span>`); n != len(Personas())-1 {
			t.Errorf("%d NA markers, want %d", n, len(Personas())-1)
		}
	})
	t.Run("shows each person by name with the values the fake will release", func(t *testing.T) {
		// An address has newlines, a JSON record runs long, a work pass is NA
		// for most: each is shown as the userinfo endpoint will send it.
		fields := []string{"myinfo.name", "myinfo.registered_address", "myinfo.children_birth_records", "myinfo.workpass_status"}
		page, _ := showPage(t, "openid "+strings.Join(fields, " "))
		for _, p := range Personas() {
			shown, button := chooserShows(t, page, p.ID)
			if want := "Continue as " + p.Data["myinfo.name"]; button != want {
				t.Errorf("%s's button says %q, want %q", p.ID, button, want)
			}
			for _, f := range fields {
				if shown[f] != p.Data[f] {
					t.Errorf("%s: %s shown as %q, want %q", p.ID, f, shown[f], p.Data[f])
				}
			}
		}
	})
	t.Run("the values shown are what userinfo releases, with Options.Data", func(t *testing.T) {
		s := Start(t, Options{Chooser: true, Data: map[string]string{"myinfo.email": "same.for.everyone@example.com"}})
		p := newPKCE()
		r := authorize(t, s, authorizeQuery(s, "openid myinfo.name myinfo.email", p))
		page := string(r.body)
		shown, _ := chooserShows(t, page, "nur-aisyah")
		rq := redirectQuery(t, get(t, s.URL()+chooserLinks(t, page)["nur-aisyah"], nil))
		tok := postToken(t, s, tokenForm(s, rq.Get("code"), p))
		var tr tokenResponse
		mustUnmarshal(t, tok.body, &tr)
		released := decryptUserInfo(t, fetchUserInfo(t, s, tr.AccessToken), s.ClientKey())
		for _, f := range []string{"myinfo.name", "myinfo.email"} {
			if shown[f] != released[f] {
				t.Errorf("%s: the chooser shows %q, userinfo releases %q", f, shown[f], released[f])
			}
		}
		if released["myinfo.email"] != "same.for.everyone@example.com" {
			t.Errorf("userinfo released %q, not Options.Data's email", released["myinfo.email"])
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
