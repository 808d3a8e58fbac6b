package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

type page struct {
	Title, Message, ErrorID string
	Links                   []pageLink  // what the person can do next, in order
	FormAction, FormButton  string      // a same-origin POST the page offers (a button, no script)
	Resend                  *resendForm // a kept form, sent again by its one button
}

// pageLink is a link a page offers: a path of this site or the site's own
// address, and its text.
type pageLink struct{ URL, Text string }

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
{{range .Links}}<p><a href="{{.URL}}">{{.Text}}</a></p>
{{end}}{{if .ErrorID}}<p class="id">Error reference: {{.ErrorID}}</p>{{end}}
</body></html>
`))

// The placeholders a handle_errors route gets for a gateway failure, besides
// Caddy's own {err.status_code}, {err.message} (the page's text) and {err.id}
// (the error reference): the outcome's machine code and heading, and the
// page's next actions, each a text and a URL, "" when there is none. Every
// value is text with none of <, >, & or " and URLs with their query escaped,
// so an operator's page may put them into HTML as they are.
const (
	PlaceholderCode       = "http.sgid.error.code"
	PlaceholderTitle      = "http.sgid.error.title"
	PlaceholderAction     = "http.sgid.error.action"
	PlaceholderActionURL  = "http.sgid.error.action_url"
	PlaceholderAction2    = "http.sgid.error.action2"
	PlaceholderAction2URL = "http.sgid.error.action2_url"
)

// fail ends a request with outcome o: counted, logged under a fresh error
// reference with err (whose text, from the sgid client or the codec, holds no
// personal data), at WARN when the operator must act, recorded in the audit
// log when it is an audit event, and then answered. A gRPC call gets its
// status (grpc.go). When the site has a handle_errors route, it is returned
// to Caddy as a caddyhttp.HandlerError carrying the outcome and the
// reference, with the placeholders above, for that route to render; otherwise
// it is the gateway's page, or JSON for a client that does not want HTML.
// returnTo is where a new login leads, for outcomes that offer one.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, o outcome, err error, returnTo string) error {
	return g.failFor(w, r, o, err, returnTo, "")
}

// failFor is fail for the user sub, whose session the outcome refuses.
func (g *Gateway) failFor(w http.ResponseWriter, r *http.Request, o outcome, err error, returnTo, sub string) error {
	id := errorID()
	if o.metric != "" {
		metrics.loginFailed(o.metric)
	}
	fields := []zap.Field{zap.String("error_id", id), zap.Int("status", o.status), zap.String("reason", o.reason), zap.String("path", r.URL.Path)}
	if err != nil {
		fields = append(fields, zap.String("error", err.Error()))
	}
	if o.operator {
		g.logger.Warn("sgid request failed", fields...)
	} else {
		g.logger.Info("sgid request refused", fields...)
	}
	g.auditOutcome(o, sub, id)
	w.Header().Set("Cache-Control", "no-store")
	if isGRPC(r) {
		return writeGRPCStatus(w, grpcCode(o.status), o.message)
	}
	links := g.nextSteps(o, returnTo)
	if g.errorRoutes {
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			setPlaceholders(repl, o, links)
		}
		return caddyhttp.HandlerError{Err: outcomeError{o}, StatusCode: o.status, ID: id}
	}
	if !wantsPage(r) {
		body := map[string]string{"error": o.code, "message": o.message, "error_id": id}
		if o.next == nextLogin {
			body["login_url"] = links[0].URL
		}
		return writeJSON(w, o.status, body)
	}
	return writePage(w, o.status, page{Title: o.title, Message: o.message, ErrorID: id, Links: links})
}

// nextSteps are the links a page offers after o, the one place that says
// where each next action leads. Every target is a path of this site or its
// own address (safeReturnTo): a page never links elsewhere.
func (g *Gateway) nextSteps(o outcome, returnTo string) []pageLink {
	switch o.next {
	case nextLogin:
		text := "Try again"
		if o.action != "" {
			text = o.action
		}
		return []pageLink{{loginURL(returnTo), text}}
	case nextSwitch:
		return []pageLink{{EndpointPrefix + "logout", "Log out"}, {switchURL(returnTo), "Log in as someone else"}}
	case nextHome:
		// The site's own address: the home page of a request that reached
		// another Host (421) would be another 421.
		return []pageLink{{g.site.origin + "/", "Go to the home page"}}
	case nextConfirm:
		return []pageLink{{EndpointPrefix + "logout?everywhere=1", "Log out everywhere"}}
	}
	return nil
}

// setPlaceholders gives a handle_errors route the outcome and its next
// actions. Every one is set, "" when there is none: Caddy leaves a placeholder
// that was never set in a response as it is written.
func setPlaceholders(repl *caddy.Replacer, o outcome, links []pageLink) {
	repl.Set(PlaceholderCode, o.code)
	repl.Set(PlaceholderTitle, o.title)
	var first, second pageLink
	if len(links) > 0 {
		first = links[0]
	}
	if len(links) > 1 {
		second = links[1]
	}
	repl.Set(PlaceholderAction, first.Text)
	repl.Set(PlaceholderActionURL, first.URL)
	repl.Set(PlaceholderAction2, second.Text)
	repl.Set(PlaceholderAction2URL, second.URL)
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
// A WebSocket handshake or a gRPC call is never a page, whatever it accepts.
// The one rule for "is this a browser"; isNavigation adds the method.
func wantsPage(r *http.Request) bool {
	if r.Header.Get("X-Requested-With") != "" || isWebSocket(r) || isGRPC(r) {
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
