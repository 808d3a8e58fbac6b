package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

type page struct {
	Title, Message, ErrorID, Link, LinkText string
	FormAction, FormButton                  string      // a same-origin POST the page offers (a button, no script)
	Resend                                  *resendForm // a kept form, sent again by its one button
}

// resendForm is a form a login interrupted, as a page sends it again: its
// fields in their order, so that the browser encodes them as it first did.
type resendForm struct {
	Action, Enctype string
	Fields          []formField
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}.id{color:#666;font-size:.85rem}a{color:#0b5cad}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .FormAction}}<form method="post" action="{{.FormAction}}"><button type="submit">{{.FormButton}}</button></form>{{end}}
{{with .Resend}}<form method="post" action="{{.Action}}" enctype="{{.Enctype}}" accept-charset="utf-8">
{{range .Fields}}{{if .File}}<input type="file" name="{{.Name}}" hidden>{{else}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">{{end}}
{{end}}<button type="submit">Send the form</button></form>{{end}}
{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
{{if .ErrorID}}<p class="id">Error reference: {{.ErrorID}}</p>{{end}}
</body></html>
`))

// fail ends a request with outcome o: counted, logged under a fresh error
// reference with err (whose text, from the sgid client or the codec, holds no
// personal data), and then answered. When the site has a handle_errors route,
// it is returned to Caddy as a caddyhttp.HandlerError carrying the outcome and
// the reference, for that route to render; otherwise it is the gateway's page,
// or JSON for a client that does not want HTML. returnTo is where a new login
// leads, for outcomes that offer one.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, o outcome, err error, returnTo string) error {
	id := errorID()
	if o.metric != "" {
		metrics.loginFailed(o.metric)
	}
	fields := []zap.Field{zap.String("error_id", id), zap.Int("status", o.status), zap.String("reason", o.reason), zap.String("path", r.URL.Path)}
	if err != nil {
		fields = append(fields, zap.String("error", err.Error()))
	}
	if o.status >= 500 {
		g.logger.Error("sgid request failed", fields...)
	} else {
		g.logger.Info("sgid request refused", fields...)
	}
	w.Header().Set("Cache-Control", "no-store")
	if g.errorRoutes {
		return caddyhttp.HandlerError{Err: outcomeError{o}, StatusCode: o.status, ID: id}
	}
	login := ""
	if o.retry {
		login = EndpointPrefix + "login?return_to=" + url.QueryEscape(safeReturnTo(returnTo))
	}
	if !wantsPage(r) {
		body := map[string]string{"error": o.code, "message": o.message, "error_id": id}
		if login != "" {
			body["login_url"] = login
		}
		return writeJSON(w, o.status, body)
	}
	p := page{Title: o.title, Message: o.message, ErrorID: id}
	if login != "" {
		p.Link, p.LinkText = login, "Try again"
		if o.action != "" {
			p.LinkText = o.action
		}
	}
	return writePage(w, o.status, p)
}

func writePage(w http.ResponseWriter, status int, p page) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	return pageTemplate.Execute(w, p)
}

// wantsPage tells a person's browser from a script: a navigation
// (Sec-Fetch-Mode: navigate, where the browser sends it) or, from browsers
// that do not, an Accept that names text/html; never a request marked as XHR.
// The one rule for "is this a browser"; isNavigation adds the method.
func wantsPage(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func errorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
