package caddysgid

import (
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// What an instance holds, told so that an operator sees at once when
// instances disagree: at provisioning every handler logs (INFO) a fingerprint
// of each session secret and the kid of each signing key, with its site, and
// exports the same as caddy_sgid_key_info{site, kind, id} 1.

// The kind label of caddy_sgid_key_info.
const (
	kindSessionSecret = "session_secret"
	kindSigningKey    = "signing_key"
)

// fingerprintInfo separates the fingerprint from every key the session
// package derives from the same secret (its HKDF infos differ).
const fingerprintInfo = "caddy-sgid session secret fingerprint v1"

// fingerprint names a secret without helping anyone guess it: 8 bytes of
// SHA-256 over a key HKDF derives from the secret for this use alone, as
// base64url (11 characters whatever the secret). Any two instances holding the
// same secret print the same fingerprint, whatever their version.
func fingerprint(secret []byte) string {
	derived, err := hkdf.Key(sha256.New, secret, nil, fingerprintInfo, sha256.Size)
	if err != nil {
		panic("hkdf: " + err.Error()) // only for an output longer than 255 hashes
	}
	sum := sha256.Sum256(derived)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// keySources says where a handler's keys come from, for the log line.
type keySources struct {
	sessionSecrets string // "storage" or "config"
	signingKeys    string // "storage", "config" or "signing_secret" (HS256: no kid)
}

func (h *Handler) keySources() keySources {
	src := keySources{sessionSecrets: "config", signingKeys: "config"}
	if len(h.SessionSecrets) == 0 {
		src.sessionSecrets = "storage"
	}
	switch {
	case h.SigningSecret != "":
		src.signingKeys = "signing_secret"
	case len(h.SigningKeys) == 0:
		src.signingKeys = "storage"
	}
	return src
}

// report logs and exports the keys a handler for site s holds. A clash with
// someone else's metric costs the metric, never the config.
func (k *keyStore) report(s *gateway.Site, src keySources, secrets [][]byte, ecKeys []*ecdsa.PrivateKey) {
	ids := make([]keyID, 0, len(secrets)+len(ecKeys))
	fps := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		fp := fingerprint(secret)
		fps = append(fps, fp)
		ids = append(ids, keyID{site: s.Origin(), kind: kindSessionSecret, id: fp})
	}
	kids := make([]string, 0, len(ecKeys))
	for _, key := range ecKeys {
		kid, err := gateway.KeyID(&key.PublicKey)
		if err != nil {
			k.logger().Warn("sgid signing key has no kid", zap.Error(err))
			continue
		}
		kids = append(kids, kid)
		ids = append(ids, keyID{site: s.Origin(), kind: kindSigningKey, id: kid})
	}
	k.logger().Info("sgid keys",
		zap.String("site", s.Origin()),
		zap.Strings("session_secrets", fps), zap.String("session_secrets_from", src.sessionSecrets),
		zap.Strings("signing_keys", kids), zap.String("signing_keys_from", src.signingKeys))
	if reg := k.ctx.GetMetricsRegistry(); reg != nil {
		c, err := keyInfoIn(reg)
		if err != nil {
			k.logger().Warn("sgid key metric not registered", zap.Error(err))
			return
		}
		c.set(k, ids)
	}
}

// keyInfoDesc is caddy_sgid_key_info. Its labels are configuration (the
// site's origin) and key ids, never anything from a request.
var keyInfoDesc = prometheus.NewDesc("caddy_sgid_key_info",
	"Keys an sgid handler holds, one series each: kind session_secret (id: a fingerprint) or signing_key (id: the kid in the JWKS). Every instance of a site should show the same.",
	[]string{"site", "kind", "id"}, nil)

type keyID struct{ site, kind, id string }

// keyInfo is caddy_sgid_key_info for one config. Unlike the gateway's
// counters, it belongs to the config's registry (Caddy makes one per config
// it loads, and the admin API's /metrics serves the running config's): the
// series of a config reloaded away go with it, and a site removed from the
// config leaves nothing behind. Every sgid handler of the config reports to
// the same one, each setting its own series (again at each key swap); a
// key two handlers share is one series.
type keyInfo struct {
	mu  sync.Mutex
	ids map[*keyStore][]keyID
}

// keyInfoIn returns the config's keyInfo, registering it with reg the first
// time.
func keyInfoIn(reg prometheus.Registerer) (*keyInfo, error) {
	c := &keyInfo{ids: map[*keyStore][]keyID{}}
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(*keyInfo); ok {
			return existing, nil
		}
	}
	return c, err
}

// set makes ids the series of owner (one handler's keyStore): its keys
// after a swap replace its keys before, so a rotation's expired keys go.
func (c *keyInfo) set(owner *keyStore, ids []keyID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids[owner] = ids
}

// Describe implements prometheus.Collector.
func (c *keyInfo) Describe(ch chan<- *prometheus.Desc) { ch <- keyInfoDesc }

// Collect implements prometheus.Collector.
func (c *keyInfo) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[keyID]bool{}
	for _, ids := range c.ids {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				ch <- prometheus.MustNewConstMetric(keyInfoDesc, prometheus.GaugeValue, 1, id.site, id.kind, id.id)
			}
		}
	}
}

// Interface guards
var _ prometheus.Collector = (*keyInfo)(nil)
