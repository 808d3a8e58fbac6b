package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
)

// A form a login interrupted: a same-origin form POST that arrives after the
// session ended is kept, sealed, with the login it starts, and offered back
// after that login on a page of the gateway's, whose one button (the user's
// click, no script) sends it to the app again as the browser first sent it.
//
// What is kept, and where:
//
//   - only a POST from a page of this site (Sec-Fetch-Site: same-origin, or
//     Origin the site's) that is a document navigation, never one another
//     site made a browser send: a cross-site page cannot plant a form that a
//     user later sends as themselves;
//   - only an urlencoded or multipart form of text fields (an empty file
//     input is kept as one; a chosen file is not) within the configured
//     size, whose fields are valid UTF-8 and, urlencoded, encoded as a
//     browser encodes them, so that the browser's second submission is the
//     same bytes;
//   - only with the session cookie that ended, which names the user: after
//     the login the form is offered only if the new login is the same sub,
//     and dropped otherwise, never sent as someone else;
//   - in the login attempt's own cookie when it is small (the attempt is
//     sealed), else in the store, sealed under the site's session secret
//     and bound to the user, one per user (a newer replaces it, so a user
//     cannot fill the store), which any instance reads; either way
//     single-use (the attempt is spent at its callback, and the store's Take
//     removes it) and gone when the attempt expires.
//
// The body never appears in logs, metrics or error pages.

// DefaultFormReplay is the largest body kept by default.
const DefaultFormReplay = 64 << 10

// MaxFormReplay is the largest form_replay allowed: what the store keeps,
// less room for the sealing and the request's path.
const MaxFormReplay = revocation.MaxKept - 16<<10

// Media types of the forms kept.
const (
	formURLEncoded = "application/x-www-form-urlencoded"
	formMultipart  = "multipart/form-data"
)

// keptForm is one interrupted form submission.
type keptForm struct {
	sub         string // who filled it: the sub of the session that ended
	uri         string // the request's path and query, as it came
	contentType string // the request's Content-Type, as it came
	body        []byte

	media  string      // contentType's media type
	fields []formField // body's fields
}

// Markers of Attempt.Form: the kept form itself, or "in the store".
const (
	formInline = 'i'
	formStored = 's'
)

// formField is one field of a kept form, in the order the browser sent it.
type formField struct {
	Name, Value string
	File        bool // an empty file input
}

// formNotKept is why a form was not kept, for the page: said in a way a user
// can act on, and never holding the form's content.
type formNotKept string

const (
	notKeptOff      formNotKept = "this site does not keep forms"
	notKeptSite     formNotKept = "it was not sent from a page of this site"
	notKeptSession  formNotKept = "the session it was filled in is unknown"
	notKeptKind     formNotKept = "it is not a form this gateway can send again"
	notKeptFiles    formNotKept = "it holds files"
	notKeptSize     formNotKept = "it is too large"
	notKeptUnstored formNotKept = "it could not be stored"
)

func (f formNotKept) Error() string { return string(f) }

// interrupted answers a browser's form submission (a navigation that is not a
// GET) without a session: the login it starts keeps the form when it can,
// and otherwise a page says the session ended and the form could not be
// kept, with the login link.
func (g *Gateway) interrupted(w http.ResponseWriter, r *http.Request, returnTo string) error {
	f, why := g.keepable(w, r)
	if f != nil {
		if form, ok := g.stash(r, f); ok {
			return g.startLogin(w, r, returnTo, form)
		}
		why = notKeptUnstored
	}
	g.logger.Info("form not kept across the login", zap.String("reason", string(why)), zap.String("path", r.URL.Path))
	return g.fail(w, r, outFormNotKept.because(string(why)), nil, returnTo)
}

// keepable reads the request's form if it can be kept, or says why not.
func (g *Gateway) keepable(w http.ResponseWriter, r *http.Request) (*keptForm, formNotKept) {
	switch {
	case g.formReplay <= 0:
		return nil, notKeptOff
	case r.Method != http.MethodPost:
		return nil, notKeptKind
	case !g.sameOrigin(r):
		return nil, notKeptSite
	}
	if dest := r.Header.Get("Sec-Fetch-Dest"); dest != "" && dest != "document" {
		return nil, notKeptKind
	}
	sub, ok := g.codec().Subject(r)
	if !ok {
		return nil, notKeptSession
	}
	ct := r.Header.Get("Content-Type")
	media, params, err := mime.ParseMediaType(ct)
	if err != nil || (media != formURLEncoded && media != formMultipart) {
		return nil, notKeptKind
	}
	if r.ContentLength > g.formReplay {
		return nil, notKeptSize
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.formReplay))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, notKeptSize
		}
		return nil, notKeptKind
	}
	fields, err := formFields(media, params, body)
	if err != nil {
		return nil, err.(formNotKept)
	}
	// The page's form posts to this URI: a path of this site only, never
	// "//host" (another host to a browser), as for a post-login target.
	uri := r.URL.RequestURI()
	if safeReturnTo(uri) != uri {
		return nil, notKeptKind
	}
	return &keptForm{sub: sub, uri: uri, contentType: ct, body: body, media: media, fields: fields}, ""
}

// formFields parses a kept form's body into the fields a page can send
// again, or says why it cannot.
func formFields(media string, params map[string]string, body []byte) ([]formField, error) {
	if media == formURLEncoded {
		return urlencodedFields(body)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, notKeptKind
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var fields []formField
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return fields, nil
		}
		if err != nil {
			return nil, notKeptKind
		}
		disp, dp, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name, hasName := dp["name"]
		if err != nil || disp != "form-data" || !hasName || !utf8.ValidString(name) {
			return nil, notKeptKind
		}
		value, err := io.ReadAll(p)
		if err != nil {
			return nil, notKeptKind
		}
		if filename, isFile := dp["filename"]; isFile {
			// An empty file input is sent as a part with no file name and
			// no content; a page can send that again, a chosen file not.
			if filename != "" || len(value) != 0 {
				return nil, notKeptFiles
			}
			fields = append(fields, formField{Name: name, File: true})
			continue
		}
		if !onlyDisposition(p.Header) || !utf8.Valid(value) {
			return nil, notKeptKind
		}
		fields = append(fields, formField{Name: name, Value: string(value)})
	}
}

// onlyDisposition tells a text field's part, which a browser sends with its
// Content-Disposition alone.
func onlyDisposition(h textproto.MIMEHeader) bool {
	for k := range h {
		if !strings.EqualFold(k, "Content-Disposition") {
			return false
		}
	}
	return true
}

// urlencodedFields parses an urlencoded body, and refuses one a browser would
// not send again byte for byte: one that is not UTF-8 (a page in a legacy
// charset), or encoded otherwise than a browser encodes.
func urlencodedFields(body []byte) ([]formField, error) {
	var fields []formField
	if len(body) == 0 {
		return nil, nil
	}
	for pair := range strings.SplitSeq(string(body), "&") {
		k, v, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || !utf8.ValidString(name) || !utf8.ValidString(value) {
			return nil, notKeptKind
		}
		fields = append(fields, formField{Name: name, Value: value})
	}
	if string(encodeURLEncoded(fields)) != string(body) {
		return nil, notKeptKind
	}
	return fields, nil
}

// encodeURLEncoded is the browser's application/x-www-form-urlencoded
// serializer (WHATWG URL, with its newline normalization).
func encodeURLEncoded(fields []formField) []byte {
	var b []byte
	for i, f := range fields {
		if i > 0 {
			b = append(b, '&')
		}
		b = appendFormEncoded(b, normalizeNewlines(f.Name))
		b = append(b, '=')
		b = appendFormEncoded(b, normalizeNewlines(f.Value))
	}
	return b
}

func appendFormEncoded(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b = append(b, '+')
		case c == '*' || c == '-' || c == '.' || c == '_' ||
			'0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			b = append(b, c)
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

// normalizeNewlines makes every line break CRLF, as a browser does to the
// fields it submits.
func normalizeNewlines(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// stash puts the form where the login attempt finds it, and returns what the
// attempt keeps: the form itself when it fits, else the user's sub, with the
// form sealed in the store under that sub. One form per user is in the store
// (a newer one replaces it), so what a user with a session that ended can make
// the store hold is one form_replay, however many forms they send.
func (g *Gateway) stash(r *http.Request, f *keptForm) (form string, ok bool) {
	enc := f.encode()
	if 1+len(enc) <= session.MaxAttemptForm {
		return string(formInline) + string(enc), true
	}
	if g.store == nil || 1+len(f.sub) > session.MaxAttemptForm {
		return "", false
	}
	sealed, err := g.codec().Seal(formPurpose(f.sub), enc)
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	if err := g.store.Keep(ctx, g.formKey(f.sub), []byte(sealed), AttemptTTL); err != nil {
		metrics.storeErrors.Inc()
		g.logger.Warn("revocation store unavailable: a form is not kept across its login", zap.Error(err))
		return "", false
	}
	return string(formStored) + f.sub, true
}

// formPurpose binds a form in the store to its user, and formKey names it.
func formPurpose(sub string) string { return "form " + sub }

func (g *Gateway) formKey(sub string) string { return g.site.origin + " form " + sub }

// resumed is the form the attempt kept, if the new login is the user who
// filled it; a form of another user is dropped (and taken from the store).
func (g *Gateway) resumed(r *http.Request, att *session.Attempt, sub string) (*keptForm, bool) {
	if att.Form == "" {
		return nil, false
	}
	var enc []byte
	switch att.Form[0] {
	case formInline:
		enc = []byte(att.Form[1:])
	case formStored:
		// The user's form in the store: taken whoever logged in, so that a
		// form for another user is gone too. It may be one a later attempt
		// of the same user put there (another tab): the newest, theirs.
		owner := att.Form[1:]
		if g.store == nil {
			return nil, false
		}
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		sealed, err := g.store.Take(ctx, g.formKey(owner))
		if err != nil {
			if !errors.Is(err, revocation.ErrNotKept) {
				metrics.storeErrors.Inc()
				g.logger.Warn("revocation store unavailable: a kept form is lost", zap.Error(err))
			}
			return nil, false
		}
		if enc, err = g.codec().Open(formPurpose(owner), string(sealed)); err != nil {
			g.logger.Warn("a kept form in the store does not open: dropped")
			return nil, false
		}
	default:
		return nil, false
	}
	f, ok := decodeKeptForm(enc)
	if !ok {
		return nil, false
	}
	media, params, err := mime.ParseMediaType(f.contentType)
	if err != nil {
		return nil, false
	}
	if f.media = media; f.media != formURLEncoded && f.media != formMultipart {
		return nil, false
	}
	if f.fields, err = formFields(media, params, f.body); err != nil {
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(f.sub), []byte(sub)) != 1 {
		g.logger.Info("kept form dropped: the login is not the user who filled it", zap.String("path", pathOf(f.uri)))
		return nil, false
	}
	return f, true
}

// formPage offers the kept form back: one button that sends it to the app.
// It is the callback's answer, with the new session's cookie. Its Referrer
// policy is origin, not no-referrer: under no-referrer a browser sends
// "Origin: null" with the POST, which the CSRF checks of Rails and Django
// refuse; origin sends only the site's origin, never the callback's URL.
func (g *Gateway) formPage(w http.ResponseWriter, f *keptForm) error {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "origin")
	return writePage(w, http.StatusOK, page{
		Title:   "You are logged in again",
		Message: "Your form to " + pathOf(f.uri) + " is ready to send.",
		Resend:  &resendForm{Action: f.uri, Enctype: f.media, Fields: f.fields},
	})
}

// pathOf is the path of a request URI, without its query.
func pathOf(uri string) string {
	p, _, _ := strings.Cut(uri, "?")
	return p
}

// encode is the kept form as the attempt or the store holds it: four
// length-prefixed strings.
func (f *keptForm) encode() []byte {
	b := make([]byte, 0, 4*binary.MaxVarintLen32+len(f.sub)+len(f.uri)+len(f.contentType)+len(f.body))
	for _, s := range [...][]byte{[]byte(f.sub), []byte(f.uri), []byte(f.contentType), f.body} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeKeptForm(b []byte) (*keptForm, bool) {
	var parts [4][]byte
	for i := range parts {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		parts[i], b = b[k:k+int(n)], b[k+int(n):]
	}
	if len(b) != 0 || len(parts[0]) == 0 || safeReturnTo(string(parts[1])) != string(parts[1]) {
		return nil, false
	}
	return &keptForm{sub: string(parts[0]), uri: string(parts[1]), contentType: string(parts[2]), body: parts[3]}, true
}
