package gateway

import (
	"crypto/ecdsa"
	"errors"
	"time"

	"github.com/sgidproxy/caddy-sgid/session"
)

// Keys seal the sessions and sign the assertions. A Gateway's keys can be
// replaced while it serves (SetKeys): a rotation of keys kept in Caddy's
// storage reaches a running instance that way, without a reload.
type Keys struct {
	SessionSecrets [][]byte            // the first seals, every one opens
	SigningKeys    []*ecdsa.PrivateKey // ES256: the first signs, all are published
	SigningSecret  []byte              // HS256 instead, when set
}

// keySet is what one set of Keys makes: the codec, the signer, and the cache
// of sessions decoded with that codec. A request loads it once
// (Gateway.keys), so it sees one set whatever a concurrent swap does.
type keySet struct {
	codec  *session.Codec
	signer *signer
	cache  *sessionCache
}

// SetKeys replaces the gateway's keys: requests already running finish with
// the old set, later ones use the new. The decoded-session cache starts empty
// with the new set, so a secret that was dropped opens no cached session and
// cached assertions are re-signed with the new first key.
func (g *Gateway) SetKeys(k Keys) error {
	if len(k.SessionSecrets) == 0 {
		return errors.New("gateway: no session secret")
	}
	cfg := g.codecConfig
	cfg.Secrets = k.SessionSecrets
	codec, err := session.New(cfg)
	if err != nil {
		return err // the session package's errors say "session: ..."
	}
	s, err := newSigner(k.SigningKeys, k.SigningSecret)
	if err != nil {
		return err
	}
	g.keys.Store(&keySet{codec: codec, signer: s, cache: newSessionCache(cacheBudget)})
	return nil
}

func (g *Gateway) codec() *session.Codec { return g.keys.Load().codec }
func (g *Gateway) signer() *signer       { return g.keys.Load().signer }

// Lifetimes are how long what the keys make can live: a session cookie
// without a request (the idle timeout), and an assertion. A rotation keeps a
// retired key that long.
func (g *Gateway) Lifetimes() (idle, assertion time.Duration) {
	return g.codec().IdleTimeout(), g.assertTTL
}
