package sgidtest

import (
	"bytes"
	"html/template"
	"maps"
	"net/http"
	"unicode/utf8"
)

// The pages are self-contained (no external assets) so the demo works
// offline and a strict Content-Security-Policy costs nothing.
const pageStyle = `
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; } .note { color: #555; font-size: .9rem; }
.persona { border: 1px solid #ccc; border-radius: .5rem; padding: .75rem 1rem; margin: .75rem 0; }
.persona h2 { font-size: 1.05rem; margin: 0 0 .4rem; }
table.fields { border-collapse: collapse; margin: .2rem 0 .6rem; font-size: .9rem; }
table.fields th { text-align: left; font-weight: normal; vertical-align: top; padding: .1rem .8rem .1rem 0; white-space: nowrap; }
table.fields td { white-space: pre-wrap; overflow-wrap: anywhere; padding: .1rem 0; }
summary { cursor: pointer; }
.na { color: #888; } code { font-size: .85rem; }
a.button { display: inline-block; padding: .4rem .9rem; border-radius: .3rem; background: #c8102e; color: #fff; text-decoration: none; }
a.cancel { display: inline-block; margin-top: 1rem; color: #333; }
`

var chooserPage = template.Must(template.New("chooser").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sgidtest: choose who logs in</title>
<style>` + pageStyle + `</style></head>
<body>
<h1>Log in to <code>{{.ClientID}}</code> with the fake sgID</h1>
<p class="note">This is sgidtest, a test server: every person below is fictional.
The application asks for {{if .Fields}}these fields: {{range $i, $f := .Fields}}{{if $i}}, {{end}}<code>{{$f}}</code>{{end}}{{else}}no fields beyond your pseudonymous ID{{end}}.</p>
{{range .Personas}}
<div class="persona" id="persona-{{.ID}}">
<h2>{{.Label}}</h2>
{{if .Fields}}<table class="fields">{{range .Fields}}
<tr><th><code>{{.Name}}</code></th><td class="value">{{if .NA}}<span class="na">NA: no data</span>{{else if .Short}}<details><summary>{{.Short}}…</summary>{{.Value}}</details>{{else}}{{.Value}}{{end}}</td></tr>{{end}}
</table>{{end}}
<a class="button" href="{{.ContinueURL}}">Continue as {{.Name}}</a>
</div>
{{end}}
<a class="cancel" href="{{.CancelURL}}">Cancel</a>
</body></html>
`))

var errorPageTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>sgidtest: authorization request rejected</title>
<style>` + pageStyle + `</style></head>
<body>
<h1>This login request cannot be served</h1>
<p>{{.}}</p>
<p class="note">sgidtest does not send this error back to the application: it has no
redirect URI it can trust for this request. Start the login again from the application.</p>
</body></html>
`))

// chooserField is a field the application asked for, with the value the
// server will release for a persona.
type chooserField struct {
	Name, Value string
	NA          bool
	Short       string // set for a long value: its start, the rest behind a <details>
}

// chooserLong is how many characters of a value the chooser shows before
// folding the rest away: JSON records run to kilobytes.
const chooserLong = 80

type chooserPersona struct {
	ID, Label   string
	Name        string // what the person is called, as myinfo.name has it
	Fields      []chooserField
	ContinueURL string
}

func (s *Server) renderChooser(w http.ResponseWriter, req authRequest, pending string) {
	var fields []string
	for _, sc := range req.scopes {
		if sc != "openid" {
			fields = append(fields, sc)
		}
	}
	data := struct {
		ClientID  string
		Fields    []string
		Personas  []chooserPersona
		CancelURL string
	}{
		ClientID:  req.clientID,
		Fields:    fields,
		CancelURL: consentURL(pending, choice{cancel: true}),
	}
	for _, p := range personas {
		cp := chooserPersona{
			ID:          p.ID,
			Label:       p.Label,
			Name:        p.Data["myinfo.name"],
			ContinueURL: consentURL(pending, choice{persona: p.ID}),
		}
		if cp.Name == "" {
			cp.Name = p.ID
		}
		// What handleUserInfo releases: the persona's data with Options.Data over it.
		released := p.Data
		if len(s.data) > 0 {
			released = maps.Clone(p.Data)
			maps.Copy(released, s.data)
		}
		for _, f := range fields {
			v, ok := released[f]
			cf := chooserField{Name: f, Value: v, NA: !ok || v == "NA"}
			if utf8.RuneCountInString(v) > chooserLong {
				cf.Short = string([]rune(v)[:chooserLong])
			}
			cp.Fields = append(cp.Fields, cf)
		}
		data.Personas = append(data.Personas, cp)
	}
	renderPage(w, http.StatusOK, chooserPage, data)
}

// consentURL is relative so the page works under any PublicURL.
func consentURL(pending string, c choice) string {
	q := c.values()
	q.Set("pending", pending)
	return "/v2/oauth/authorize/consent?" + q.Encode()
}

func (s *Server) errorPage(w http.ResponseWriter, status int, reason string) {
	w.Header().Set(errorHeader, reason)
	renderPage(w, status, errorPageTemplate, reason)
}

func renderPage(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "sgidtest: rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
