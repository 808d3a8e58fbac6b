package session

import (
	"iter"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// cookiePairs yields every name=value pair of the request's Cookie headers in order,
// without allocating: http.Request.Cookies would build every cookie of the site, and
// r.Cookie rescans the header once per chunk. Surrounding double quotes are removed as
// net/http does; anything else malformed is passed on for decoding to reject.
func cookiePairs(h http.Header) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for _, line := range h["Cookie"] {
			for line != "" {
				var part string
				part, line, _ = strings.Cut(line, ";")
				part = textproto.TrimString(part)
				if part == "" {
					continue
				}
				name, value, _ := strings.Cut(part, "=")
				name = textproto.TrimString(name)
				value = textproto.TrimString(value)
				if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
					value = value[1 : len(value)-1]
				}
				if !yield(name, value) {
					return
				}
			}
		}
	}
}

// StripCookies removes this codec's own cookies from the request's Cookie headers:
// the session chunks and the login attempts, in both name forms. A gateway calls it
// before passing the request on, so the upstream never holds a credential it has
// no use for (and which it might log). Other cookies are kept in their order; a
// line left empty is dropped. When the headers carry none of the codec's cookies,
// they are left alone and nothing is allocated.
func (c *Codec) StripCookies(h http.Header) {
	owned := false
	for name := range cookiePairs(h) {
		if owned = c.owns(name); owned {
			break
		}
	}
	if !owned {
		return
	}
	var kept []string
	for _, line := range h["Cookie"] {
		var b strings.Builder
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			name, _, _ := strings.Cut(part, "=")
			if part == "" || c.owns(textproto.TrimString(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(part)
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// owns tells whether name is one of this codec's cookies: a session chunk or a
// login attempt, in either form.
func (c *Codec) owns(name string) bool {
	if _, _, ok := c.chunkIndex(name); ok {
		return true
	}
	return strings.HasPrefix(name, c.loginPrefix[plainForm]) || strings.HasPrefix(name, c.loginPrefix[hostForm])
}

// carried is the session chunks a request carries, in both name forms.
type carried struct {
	values [2][chunkNameSlots]string // [form][index]
	seen   [2]uint16                 // [form]: bit i set when chunk i is present
}

// scan collects the session chunks of r into k, which callers keep on their stack.
// The first cookie of a name wins, as with r.Cookie; a browser sends the more
// specific one first.
func (c *Codec) scan(r *http.Request, k *carried) {
	for name, value := range cookiePairs(r.Header) {
		form, i, ok := c.chunkIndex(name)
		if !ok || k.seen[form]&(1<<i) != 0 {
			continue
		}
		k.seen[form] |= 1 << i
		k.values[form][i] = value
	}
}

// chunkIndex tells whether name is one of this codec's session chunk names, in which
// form, and at which index.
func (c *Codec) chunkIndex(name string) (form, index int, ok bool) {
	rest, isHost := strings.CutPrefix(name, hostPrefix)
	if isHost {
		form = hostForm
	}
	rest, ok = strings.CutPrefix(rest, c.name)
	if !ok {
		return 0, 0, false
	}
	if rest == "" {
		return form, 0, true
	}
	// "_1" to "_9": hand-parsed, since strconv.Atoi allocates an error for the
	// attempt cookies ("_login_...") that share the prefix.
	if len(rest) != 2 || rest[0] != '_' || rest[1] < '1' || rest[1] > '9' {
		return 0, 0, false
	}
	return form, int(rest[1] - '0'), true
}

// setCookie writes one cookie with the attributes its form requires. maxAge < 0
// deletes it.
func setCookie(w http.ResponseWriter, form int, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   form == hostForm,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// expire tells the browser to drop a cookie. The attributes match those it was set
// with, so browsers that compare them (a __Host- cookie can only be replaced by a
// Secure one) accept the deletion.
func expire(w http.ResponseWriter, form int, name string) {
	setCookie(w, form, name, "", -1)
}

// maxAgeUntil is the Max-Age, in whole seconds and at least 1, for a cookie that must
// die at t. Rounding down means the browser drops it no later than the server would
// refuse it.
func maxAgeUntil(now, t time.Time) int {
	return max(int(t.Sub(now)/time.Second), 1)
}

// The chunk suffixes ("_1" to "_9") and the count prefix ("1." to "9.") are parsed by
// hand for at most ten names and nine chunks; this fails to compile past that.
const (
	_ = uint(9 - MaxChunks)
	_ = uint(10 - chunkNameSlots)
	_ = uint(chunkNameSlots - MaxChunks)
)

// chunkCount is how many cookies an encoded value of n characters needs.
func chunkCount(n int) int {
	return (n + chunkSize - 1) / chunkSize
}

// countPrefix is the prefix of the first chunk that says how many chunks follow it:
// "1." to "9.". Base64url has no '.', so it cannot be mistaken for the value.
func countPrefix(n int) string {
	return strconv.Itoa(n) + "."
}

// parseCount splits the first chunk into its chunk count and the value. Any
// malformation, and a count past MaxChunks, is not ok.
func parseCount(first string) (n int, rest string, ok bool) {
	head, rest, found := strings.Cut(first, ".")
	if !found || len(head) != 1 || head[0] < '1' || head[0] > '9' {
		return 0, "", false
	}
	n = int(head[0] - '0')
	if n > MaxChunks {
		return 0, "", false
	}
	return n, rest, true
}
