package sgid_test

import (
	"errors"
	"testing"

	"github.com/sgidproxy/caddy-sgid/sgid"
	"github.com/sgidproxy/caddy-sgid/sgid/sgidtest"
)

// Callback fetches userinfo while the ID token is verified. These pin what that
// must not change: nothing is used unless the ID token verified, and a bad ID token
// is the error reported whatever userinfo did.
func TestCallbackVerifiesTheIDTokenWhileFetchingUserInfo(t *testing.T) {
	// loginWith logs in against a fresh fake sgID answering with faults.
	loginWith := func(t *testing.T, faults sgidtest.Faults) (*sgidtest.Server, *sgid.Identity, error) {
		t.Helper()
		srv := newFakeSgID(t, sgidtest.Options{})
		srv.SetFaults(faults)
		id, err := login(t, clientFor(t, srv, []string{"openid", "myinfo.name"}, nil))
		return srv, id, err
	}

	t.Run("userinfo is fetched before the key set arrives", func(t *testing.T) {
		// With the JWKS failing, a client that verified first would never ask for
		// userinfo.
		srv, id, err := loginWith(t, sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointJWKS: 503}})
		if id != nil || !errors.Is(err, sgid.ErrUnavailable) {
			t.Fatalf("login = %v, %v; want no identity and ErrUnavailable for the key set", id, err)
		}
		if n := srv.Requests(sgidtest.EndpointUserInfo); n != 1 {
			t.Fatalf("%d userinfo requests, want 1 made alongside the verification", n)
		}
	})
	t.Run("a bad ID token wins over a failed userinfo", func(t *testing.T) {
		_, _, err := loginWith(t, sgidtest.Faults{WrongNonce: true, Status: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 500}})
		var ide *sgid.IDTokenError
		if !errors.As(err, &ide) || errors.Is(err, sgid.ErrUnavailable) {
			t.Fatalf("login error = %v, want the ID token's nonce error only", err)
		}
	})
	t.Run("a good ID token with a failed userinfo is the userinfo's error", func(t *testing.T) {
		_, _, err := loginWith(t, sgidtest.Faults{Status: map[sgidtest.Endpoint]int{sgidtest.EndpointUserInfo: 500}})
		var ue *sgid.UnavailableError
		if !errors.As(err, &ue) || ue.Endpoint != "userinfo" {
			t.Fatalf("login error = %v, want userinfo unavailable", err)
		}
	})
	t.Run("a bad ID token with a good userinfo yields nothing", func(t *testing.T) {
		srv, id, err := loginWith(t, sgidtest.Faults{BadSignature: true})
		if id != nil || !errors.Is(err, sgid.ErrInvalidIDToken) {
			t.Fatalf("login = %v, %v; want no identity and ErrInvalidIDToken", id, err)
		}
		if n := srv.Requests(sgidtest.EndpointUserInfo); n != 1 {
			t.Fatalf("%d userinfo requests, want 1", n)
		}
	})
}
