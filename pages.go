package caddysgid

import (
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// failure is an error as the user sees it and as the log records it. Neither
// holds personal data: messages are fixed text, and err comes from the sgid
// client, whose errors carry none.
type failure struct {
	status  int
	title   string
	message string
	reason  string // short, fixed, for the log
	err     error
	retry   string // where "try again" leads; empty for no link
}

type page struct {
	Title, Message, ErrorID, Link, LinkText string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}.id{color:#666;font-size:.85rem}a{color:#0b5cad}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Link}}<p><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
{{if .ErrorID}}<p class="id">Error reference: {{.ErrorID}}</p>{{end}}
</body></html>
`))

// fail logs f under a fresh error id and answers with a short page (JSON for
// clients that do not want HTML) that shows the same id, so a user's report can
// be matched to the log line.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, f failure) error {
	id := errorID()
	fields := []zap.Field{zap.String("error_id", id), zap.Int("status", f.status), zap.String("reason", f.reason), zap.String("path", r.URL.Path)}
	if f.err != nil {
		fields = append(fields, zap.String("error", f.err.Error()))
	}
	if f.status >= 500 {
		h.logger.Error("sgid request failed", fields...)
	} else {
		h.logger.Info("sgid request refused", fields...)
	}
	w.Header().Set("Cache-Control", "no-store")
	if !wantsHTML(r) {
		body := map[string]string{"error": strings.ToLower(strings.ReplaceAll(f.title, " ", "_")), "message": f.message, "error_id": id}
		if f.retry != "" {
			body["login_url"] = reservedPrefix + "login?return_to=" + url.QueryEscape(f.retry)
		}
		return writeJSON(w, f.status, body)
	}
	p := page{Title: f.title, Message: f.message, ErrorID: id}
	if f.retry != "" {
		p.Link, p.LinkText = reservedPrefix+"login?return_to="+url.QueryEscape(f.retry), "Try again"
	}
	return writePage(w, f.status, p)
}

func writePage(w http.ResponseWriter, status int, p page) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	return pageTemplate.Execute(w, p)
}

// wantsHTML is true for browsers: an Accept header that names text/html, or none
// at all from a navigation.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") || (accept == "" && r.Header.Get("Sec-Fetch-Mode") == "navigate")
}

func errorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
