package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
)

// BenchmarkAuthenticatedRequest is the gateway's cost on a request with a valid
// session: strip, session lookup, identity headers, placeholders and the cached
// assertion, with a no-op next handler.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	benchSessionRequests(b, false, 0)
}

// BenchmarkAuthenticatedRequestRevocations is the same with revocation on
// and 10,000 live revocations loaded (sessions and subs, none of them this
// session's): the per-request check is an in-memory lookup.
func BenchmarkAuthenticatedRequestRevocations(b *testing.B) {
	benchSessionRequests(b, false, 10_000)
}

// BenchmarkFirstRequest is a session's first request, or one after its cache
// entry was evicted: the cookie is decoded and the assertion signed.
func BenchmarkFirstRequest(b *testing.B) {
	benchSessionRequests(b, true, 0)
}

// benchSessionRequests runs the session's requests; revoked > 0 turns
// revocation on with that many live entries.
func benchSessionRequests(b *testing.B, cold bool, revoked int) {
	var h *Gateway
	if revoked == 0 {
		h = benchGateway(b)
	} else {
		cfg := testConfig(b, "http://app.example/.sgid/callback")
		cfg.Forward = []Forward{{Field: "myinfo.name", Header: DefaultHeader("myinfo.name")}, {Field: "myinfo.email", Header: "X-Email"}}
		cfg.Revocations = revocation.NewList()
		until := time.Now().Add(time.Hour)
		entries := make([]revocation.Entry, revoked)
		for i := range entries {
			entries[i] = revocation.Entry{Session: session.NewID(), Expires: until, Reason: revocation.ReasonLogout}
			if i%2 == 1 {
				entries[i] = revocation.Entry{Sub: fmt.Sprintf("sub-%d", i), Before: time.Now(), Expires: until, Reason: revocation.ReasonEverywhere}
			}
		}
		cfg.Revocations.Merge(entries) // one snapshot, as a syncer loads it
		if got := cfg.Revocations.Len(); got != revoked {
			b.Fatalf("%d revocations loaded, want %d", got, revoked)
		}
		h = newTestGateway(b, cfg)
	}
	cookieReq := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	rec := httptest.NewRecorder()
	if err := h.codec().Write(rec, cookieReq, &session.Data{Sub: "sub-1234567890", Fields: []session.Field{
		{Name: "myinfo.name", Value: "TAN AH KOW"},
		{Name: "myinfo.email", Value: "tan@example.com"},
	}}, false); err != nil {
		b.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	w := httptest.NewRecorder()
	// Each request gets a fresh replacer, as in Caddy: the handler adds a
	// placeholder provider to it. They are made in batches with the timer
	// stopped, so that neither they nor the header copies count as the
	// handler's cost.
	const batch = 1024
	reqs := make([]*http.Request, batch)
	prepare := func() {
		for i := range reqs {
			ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
			r := httptest.NewRequest(http.MethodGet, "http://app.example/page", nil).WithContext(ctx)
			for _, c := range cookies {
				r.AddCookie(c)
			}
			r.Header.Set("Accept", "text/html")
			r.Header.Set("User-Agent", "bench")
			reqs[i] = r
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var last *http.Request
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			prepare()
			b.StartTimer()
		}
		last = reqs[i%batch]
		if cold {
			h.keys.Load().cache.clear()
		}
		if err := h.ServeHTTP(w, last, next); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if last.Header.Get(AssertionHeader) == "" || last.Header.Get(SubHeader) != "sub-1234567890" {
		b.Fatal("the request did not get its identity")
	}
	repl := last.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if v, _ := repl.GetString("http.auth.user.id"); v != "sub-1234567890" {
		b.Fatalf("{http.auth.user.id} = %q", v)
	}
	if len(h.keys.Load().cache.m) != 1 {
		b.Fatalf("%d cache entries, want the one session", len(h.keys.Load().cache.m))
	}
}

// benchGateway is a gateway for http://app.example forwarding two fields.
func benchGateway(tb testing.TB) *Gateway {
	return withForward(tb, Forward{Field: "myinfo.name", Header: DefaultHeader("myinfo.name")}, Forward{Field: "myinfo.email", Header: "X-Email"})
}

// BenchmarkColdPathAtScale is one request each from 100,000 distinct
// sessions, round robin: far more than the decoded-session cache holds, so
// every request decodes its cookie and gets its assertion, as on a site with
// that many users. The cookies are what the callback writes: each carries
// the assertion signed at the login. "goroutine_per_request" runs each
// request on a new goroutine, as the HTTP/2 server does: its stack starts
// small, so what the cold path puts on the stack costs its growth too.
func BenchmarkColdPathAtScale(b *testing.B) {
	b.Run("one_goroutine", func(b *testing.B) { benchColdPath(b, false) })
	b.Run("goroutine_per_request", func(b *testing.B) { benchColdPath(b, true) })
}

func benchColdPath(b *testing.B, goroutinePerRequest bool) {
	const n = 100_000
	h := benchGateway(b)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	cookies := make([]string, n)
	now := time.Now()
	for i := range cookies {
		d := &session.Data{Sub: fmt.Sprintf("sub-%07d", i), Fields: []session.Field{
			{Name: "myinfo.name", Value: fmt.Sprintf("USER %d", i)},
			{Name: "myinfo.email", Value: fmt.Sprintf("user%d@example.com", i)},
		}}
		_, carried, err := h.signer().assertion(d, h.layout, h.site.origin, h.site.audience, now, h.assertTTL)
		if err != nil {
			b.Fatal(err)
		}
		d.Carried = carried
		rec := httptest.NewRecorder()
		if err := h.codec().Write(rec, httptest.NewRequest(http.MethodGet, "http://app.example/", nil), d, false); err != nil {
			b.Fatal(err)
		}
		cookies[i] = cookieHeader(rec)
	}
	w := httptest.NewRecorder()
	serve := func(r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Error(err)
		}
		if r.Header.Get(AssertionHeader) == "" {
			b.Error("a request got no identity")
		}
	}
	const batch = 1024
	reqs := make([]*http.Request, batch)
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			for j := range reqs {
				reqs[j] = benchRequest(cookies[(i+j)%n])
			}
			b.StartTimer()
		}
		r := reqs[i%batch]
		if !goroutinePerRequest {
			serve(r)
			continue
		}
		go func() { serve(r); done <- struct{}{} }()
		<-done
	}
	b.StopTimer()
	if got := w.Result().Header.Values("Set-Cookie"); len(got) != 0 {
		b.Fatalf("a cold request with a carried assertion rewrote the cookie: %v", got)
	}
}

// benchRequest is a page request carrying cookie, with its own replacer as
// in Caddy.
func benchRequest(cookie string) *http.Request {
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	r := httptest.NewRequest(http.MethodGet, "http://app.example/page", nil).WithContext(ctx)
	r.Header.Set("Cookie", cookie)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("User-Agent", "bench")
	return r
}
