package sgid_test

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

func TestReplayedCodeIsAnInvalidGrant(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, nil)
	req, q := startLogin(t, c)
	if _, err := c.Callback(t.Context(), q, req); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := c.Callback(t.Context(), q, req)
	if !errors.Is(err, sgid.ErrInvalidGrant) {
		t.Fatalf("replayed code: error = %v, want ErrInvalidGrant", err)
	}
}

func TestExpiredCodeIsAnInvalidGrant(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := newFakeSgID(t, sgidtest.Options{CodeTTL: time.Minute, Now: clock})
	c := clientFor(t, srv, nil, nil)
	req, q := startLogin(t, c)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := c.Callback(t.Context(), q, req); !errors.Is(err, sgid.ErrInvalidGrant) {
		t.Fatalf("expired code: error = %v, want ErrInvalidGrant", err)
	}
}

func TestPKCEVerifierFromAnotherAttemptIsAnInvalidGrant(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, nil)
	req, q := startLogin(t, c)
	other, _ := c.NewAuthRequest("")
	stolen := *req
	stolen.CodeVerifier = other.CodeVerifier
	if _, err := c.Callback(t.Context(), q, &stolen); !errors.Is(err, sgid.ErrInvalidGrant) {
		t.Fatalf("wrong verifier: error = %v, want ErrInvalidGrant", err)
	}
}

func TestWrongClientSecretIsInvalidClient(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, func(c *sgid.Config) { c.ClientSecret = "not-the-secret-not-the-secret-00" })
	_, err := login(t, c)
	if !errors.Is(err, sgid.ErrInvalidClient) {
		t.Fatalf("error = %v, want ErrInvalidClient", err)
	}
	if strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("error echoes the secret: %v", err)
	}
}

func TestUserCancellingAtTheChooserIsAccessDenied(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{Chooser: true})
	c := clientFor(t, srv, nil, nil)
	req, _ := c.NewAuthRequest("")
	callback, err := srv.Cancel(t.Context(), c.AuthURL(req))
	if err != nil {
		t.Fatalf("cancelling at sgID: %v", err)
	}
	loc, err := url.Parse(callback)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Callback(t.Context(), loc.Query(), req)
	if !errors.Is(err, sgid.ErrAccessDenied) {
		t.Fatalf("error = %v, want ErrAccessDenied", err)
	}
}

func TestSlowSgIDHitsTheTimeout(t *testing.T) {
	for _, ep := range []sgidtest.Endpoint{sgidtest.EndpointToken, sgidtest.EndpointUserInfo, sgidtest.EndpointJWKS} {
		t.Run(string(ep), func(t *testing.T) {
			srv := newFakeSgID(t, sgidtest.Options{})
			c := clientFor(t, srv, nil, func(c *sgid.Config) { c.Timeout = 200 * time.Millisecond })
			srv.SetFaults(sgidtest.Faults{Delay: map[sgidtest.Endpoint]time.Duration{ep: time.Minute}})
			start := time.Now()
			_, err := login(t, c)
			if !errors.Is(err, sgid.ErrUnavailable) {
				t.Fatalf("error = %v, want ErrUnavailable", err)
			}
			// Generous bound: it only has to show the minute-long delay was cut short.
			if elapsed := time.Since(start); elapsed > 20*time.Second {
				t.Fatalf("login took %s: the timeout was not honoured", elapsed)
			}
		})
	}
}

func TestUnreachableSgIDIsUnavailable(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, nil)
	req, q := startLogin(t, c)
	srv.Close()
	_, err := c.Callback(t.Context(), q, req)
	if !errors.Is(err, sgid.ErrUnavailable) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
}

func TestJWKSIsCachedAndRefetchedOnRotation(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, nil)
	for range 3 {
		if _, err := login(t, c); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Requests(sgidtest.EndpointJWKS); n != 1 {
		t.Fatalf("JWKS fetched %d times for 3 logins with one key, want 1", n)
	}
	if _, err := srv.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, c); err != nil {
		t.Fatalf("login after rotation: %v", err)
	}
	if n := srv.Requests(sgidtest.EndpointJWKS); n != 2 {
		t.Fatalf("JWKS fetched %d times after a rotation, want 2", n)
	}
	srv.RetireOldSigningKeys()
	if _, err := login(t, c); err != nil {
		t.Fatalf("login after the old key was retired: %v", err)
	}
}

func TestUnknownKIDRefetchesAreRateLimited(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, func(c *sgid.Config) { c.JWKSRefreshInterval = time.Hour })
	if _, err := login(t, c); err != nil {
		t.Fatal(err)
	}
	srv.SetFaults(sgidtest.Faults{UnknownKID: true})
	for range 5 {
		if _, err := login(t, c); !errors.Is(err, sgid.ErrInvalidIDToken) {
			t.Fatalf("error = %v, want ErrInvalidIDToken", err)
		}
	}
	if n := srv.Requests(sgidtest.EndpointJWKS); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1: unknown kids must not each cause a fetch", n)
	}
}

func TestClockSkewIsAllowedBothWaysWithinTheLimit(t *testing.T) {
	for _, skew := range []time.Duration{-30 * time.Second, 30 * time.Second} {
		srv := newFakeSgID(t, sgidtest.Options{
			TokenTTL: 10 * time.Second,
			Now:      func() time.Time { return time.Now().Add(skew) },
		})
		c := clientFor(t, srv, nil, func(c *sgid.Config) { c.ClockSkew = time.Minute })
		if _, err := login(t, c); err != nil {
			t.Errorf("sgID clock off by %s: %v", skew, err)
		}
		strict := clientFor(t, srv, nil, func(c *sgid.Config) {
			c.ClockSkew = time.Second
			c.Now = func() time.Time { return time.Now().Add(-3 * skew) }
		})
		if _, err := login(t, strict); !errors.Is(err, sgid.ErrInvalidIDToken) {
			t.Errorf("clock off by %s beyond a 1s skew: error = %v, want ErrInvalidIDToken", 4*skew, err)
		}
	}
}

func TestConcurrentLoginsAllSucceed(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, sgidtest.Catalog(), nil)
	// The first logins race to fetch the JWKS.
	if _, err := srv.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := login(t, c)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Requests(sgidtest.EndpointJWKS); n != 1 {
		t.Errorf("8 concurrent first logins fetched the JWKS %d times, want 1", n)
	}
}

func TestSlowJWKSFailsConcurrentLoginsWithinTheirOwnTimeout(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, func(c *sgid.Config) { c.Timeout = time.Second })
	srv.SetFaults(sgidtest.Faults{Delay: map[sgidtest.Endpoint]time.Duration{sgidtest.EndpointJWKS: 5 * time.Second}})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 5)
	took := make([]time.Duration, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = login(t, c)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, sgid.ErrUnavailable) {
			t.Errorf("login %d: error = %v, want ErrUnavailable", i, err)
		}
		// Each login makes two calls before the JWKS (token) and waits on one
		// shared fetch, so it ends about one timeout after it started waiting, not
		// behind the other logins' fetches in turn.
		if took[i] > 2500*time.Millisecond {
			t.Errorf("login %d took %s with a 1s timeout: the JWKS fetches queued", i, took[i].Round(time.Millisecond))
		}
	}
}

func TestRotationJustAfterAFetchWaitsOutTheRateLimit(t *testing.T) {
	srv := newFakeSgID(t, sgidtest.Options{})
	c := clientFor(t, srv, nil, func(c *sgid.Config) { c.JWKSRefreshInterval = 2 * time.Second })
	if _, err := login(t, c); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := login(t, c); err != nil {
		t.Fatalf("the first login after a rotation within the refresh interval failed: %v", err)
	}
	if n := srv.Requests(sgidtest.EndpointJWKS); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the login took %s; the wait should end with the 2s interval", took)
	}
}
