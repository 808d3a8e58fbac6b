package caddysgid

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// keyStore generates the gateway's own secrets once and keeps them in Caddy's
// storage, so a reload or restart logs nobody out and every instance sharing
// the storage (file system, Redis, Consul, S3...) shares the keys.
//
// A key is generated only when storage says it does not exist
// (fs.ErrNotExist), never because a read failed. Generating one that storage
// held before is a WARN (see warnIfLost), and what an instance holds is
// logged and exported (report, keyinfo.go), so that instances that disagree
// show at once.
type keyStore struct {
	storage  certmagic.Storage
	ctx      caddy.Context
	issuer   string // sgID's issuer URL
	clientID string

	log  *zap.Logger      // nil: the handler's (ctx.Logger())
	held *heldKeys        // nil: processKeys
	now  func() time.Time // nil: time.Now

	// raw is what storage held under each name this keyStore loaded or
	// made, as the key watcher (rotation.go) starts from it.
	raw map[string][]byte
}

// prefix keeps each sgID client's keys apart, per issuer as well as per client
// id: a staging site pointed at a test IdP with the production client id must
// not share the production site's keys. Issuer and client id are hashed
// (length-prefixed, so no two pairs collide): neither is a secret, but storage
// keys are file names on some backends.
func (k *keyStore) prefix() string {
	return "sgid/" + digest(k.issuer, k.clientID) + "/"
}

// digest is a short hex name for a tuple of strings, each length-prefixed.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (k *keyStore) logger() *zap.Logger {
	if k.log != nil {
		return k.log
	}
	return k.ctx.Logger()
}

func (k *keyStore) clock() time.Time {
	if k.now != nil {
		return k.now()
	}
	return time.Now()
}

// keep notes v as what storage holds under name.
func (k *keyStore) keep(name string, v []byte) {
	if k.raw == nil {
		k.raw = map[string][]byte{}
	}
	k.raw[name] = v
}

func (k *keyStore) heldKeys() *heldKeys {
	if k.held != nil {
		return k.held
	}
	return processKeys
}

// loadOrCreate returns the value under name, making it with create the first
// time; what names it for the logs. A storage lock makes instances that start
// together agree on one value: the second read, under the lock, sees what
// another instance made while this one waited. Only fs.ErrNotExist (which
// certmagic.Storage returns for a missing key) lets it generate: after any
// other error the key may well exist, and replacing it would log out every
// user of the instances that hold it.
func (k *keyStore) loadOrCreate(name, what string, create func() ([]byte, error)) ([]byte, error) {
	key := k.prefix() + name
	if v, err := k.storage.Load(k.ctx, key); err == nil {
		k.loaded(name, what, v)
		return v, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading %s: %w", key, err)
	}
	if err := k.storage.Lock(k.ctx, key+".lock"); err != nil {
		return nil, fmt.Errorf("locking %s: %w", key, err)
	}
	defer k.storage.Unlock(context.WithoutCancel(k.ctx), key+".lock")
	switch v, err := k.storage.Load(k.ctx, key); {
	case err == nil:
		k.loaded(name, what, v) // another instance made it while this one waited
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("loading %s again under its lock: %w; not generating %s, which another instance may just have stored", key, err, what)
	}
	k.warnIfLost(name, what)
	v, err := create()
	if err != nil {
		return nil, err
	}
	if err := k.storage.Store(k.ctx, key, v); err != nil {
		return nil, fmt.Errorf("storing %s: %w", key, err)
	}
	k.heldKeys().remember(key, v)
	k.keep(name, v)
	k.listInInventory(name)
	return v, nil
}

// ring is loadOrCreate's value as a key ring (keyring.go).
func (k *keyStore) ring(name, what string, create func() ([]byte, error)) (keyRing, error) {
	v, err := k.loadOrCreate(name, what, create)
	if err != nil {
		return keyRing{}, err
	}
	r, err := parseRing(v)
	if err != nil {
		return keyRing{}, fmt.Errorf("%s%s: %w", k.prefix(), name, err)
	}
	return r, nil
}

// sessionSecrets are the session secrets of this issuer and client, the
// sealing one first: 32 random bytes, stored base64url-encoded, with those a
// rotation keeps for their overlap.
func (k *keyStore) sessionSecrets() ([][]byte, error) {
	r, err := k.ring(sessionSecretName, secretWhat, func() ([]byte, error) {
		return []byte(NewSessionSecret()), nil
	})
	if err != nil {
		return nil, err
	}
	secrets, err := secretsOf(r, k.clock())
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w; delete it to have a new one made", k.prefix(), sessionSecretName, err)
	}
	return secrets, nil
}

// signingKeys are the ES256 assertion keys of one site and audience, the
// signing one first, stored as PKCS#8 PEM: each site has its own keys and
// JWKS, so an assertion minted by one site's gateway never verifies against
// another's keys.
func (k *keyStore) signingKeys(s *gateway.Site) ([]*ecdsa.PrivateKey, error) {
	r, err := k.ring(signingKeyName(s), signingWhat(s), func() ([]byte, error) {
		pemText, err := NewSigningKeyPEM()
		return []byte(pemText), err
	})
	if err != nil {
		return nil, err
	}
	return signingKeysOf(r, k.clock())
}

// What the logs call the keys.
const secretWhat = "the session secret"

func signingWhat(s *gateway.Site) string {
	return fmt.Sprintf("the assertion signing key of %s (audience %s)", s.Origin(), s.Audience())
}

// The names of the keys under the prefix.
const sessionSecretName = "session.secret"

func signingKeyName(s *gateway.Site) string {
	return "assertion-" + digest(s.Origin(), s.Audience()) + ".key"
}

// isKeyName reports whether name (under the prefix) is one of the keys
// keyStore generates; anything else there (the inventory, other features'
// data) is not a key.
func isKeyName(name string) bool {
	return name == sessionSecretName || strings.HasPrefix(name, "assertion-") && strings.HasSuffix(name, ".key")
}

// inventoryName is the list, under the prefix, of the keys this storage has
// held: names only, never key material. It is how an instance tells a first
// start from storage that lost data (a flush, a Redis restart without
// persistence, a failover to an empty replica, a file deleted): a key the
// inventory lists but storage does not hold was there before. A key is listed
// when it is generated, and when it is loaded and not yet listed (storage made
// before the inventory existed). A storage wiped whole loses the inventory too:
// then only an instance that held the keys (heldKeys) can tell.
const inventoryName = "keys.json"

type inventory struct {
	Keys []string `json:"keys"` // names under the prefix, sorted
}

// errBadInventory is an inventory that does not decode: rewritten, since
// keeping it would keep every later loss silent.
var errBadInventory = errors.New("not a key inventory")

// readInventory returns the inventory; ok is false when storage has none.
func (k *keyStore) readInventory() (inv inventory, ok bool, err error) {
	key := k.prefix() + inventoryName
	v, err := k.storage.Load(k.ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return inv, false, nil
	}
	if err != nil {
		return inv, false, fmt.Errorf("loading %s: %w", key, err)
	}
	if err := json.Unmarshal(v, &inv); err != nil {
		return inventory{}, false, fmt.Errorf("%s: %w (%v)", key, errBadInventory, err)
	}
	return inv, true, nil
}

// listInInventory adds name to the inventory unless it is there. The
// inventory only decides how loud generating a key is, so a failure here is a
// WARN, never a failed provisioning: the key itself is in storage.
func (k *keyStore) listInInventory(name string) {
	if inv, ok, err := k.readInventory(); err == nil && ok && slices.Contains(inv.Keys, name) {
		return
	}
	key := k.prefix() + inventoryName
	err := func() error {
		if err := k.storage.Lock(k.ctx, key+".lock"); err != nil {
			return fmt.Errorf("locking %s: %w", key, err)
		}
		defer k.storage.Unlock(context.WithoutCancel(k.ctx), key+".lock")
		inv, _, err := k.readInventory()
		if errors.Is(err, errBadInventory) {
			k.logger().Warn("replacing a sgid key inventory that does not decode", zap.Error(err))
		} else if err != nil {
			return err // unreadable now: keep what is there for the next try
		}
		if slices.Contains(inv.Keys, name) {
			return nil
		}
		inv.Keys = slices.Sorted(slices.Values(append(inv.Keys, name)))
		v, err := json.Marshal(inv)
		if err != nil {
			return err
		}
		return k.storage.Store(k.ctx, key, v)
	}()
	if err != nil {
		k.logger().Warn("sgid key inventory not updated; a later loss of this key may go unnoticed",
			zap.String("key", k.prefix()+name), zap.Error(err))
	}
}

// warnIfLost logs, before name is generated, whether storage held it before:
// a WARN if this process held it, if the inventory lists it, if the inventory
// cannot be read, or if there is no inventory but other keys of this issuer
// and client are there (storage from before the inventory); an INFO for a
// first generation. Generating goes ahead either way: users keep getting
// service, and the operator sees why their sessions ended.
func (k *keyStore) warnIfLost(name, what string) {
	key := k.prefix() + name
	var why string
	var cause error
	inv, listed, err := k.readInventory()
	switch {
	case k.heldKeys().has(key):
		why = "this process held it before: the storage lost it, or the config now points at other storage"
	case err != nil:
		why, cause = "the key inventory cannot be read, so whether storage held it before is unknown", err
	case listed && slices.Contains(inv.Keys, name):
		why = "the key inventory (" + inventoryName + ") lists it: storage held it before and lost it"
	case !listed:
		others, err := k.otherKeys(name)
		if err != nil {
			why, cause = "listing the other keys failed, so whether storage held it before is unknown", err
		} else if len(others) > 0 {
			why = "storage holds other keys of this issuer and client (" + strings.Join(others, ", ") + ") but no key inventory"
		}
	}
	if why == "" {
		k.logger().Info("generating "+what+" in storage", zap.String("key", key))
		return
	}
	fields := []zap.Field{zap.String("key", key), zap.String("generating", what), zap.String("reason", why)}
	if cause != nil {
		fields = append(fields, zap.Error(cause))
	}
	k.logger().Warn("generating a new sgid key where storage had one before: sessions or assertions made with the old one fail, "+
		"and instances still holding it disagree with this one until they reload (compare caddy_sgid_key_info across instances)", fields...)
}

// otherKeys lists the keys under the prefix other than name.
func (k *keyStore) otherKeys(name string) ([]string, error) {
	listed, err := k.storage.List(k.ctx, strings.TrimSuffix(k.prefix(), "/"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var others []string
	for _, key := range listed {
		if n := path.Base(key); n != name && isKeyName(n) {
			others = append(others, n)
		}
	}
	return others, nil
}

// loaded notes a key read from storage: a WARN if it is not the one this
// process held before under the same name (another instance replaced it, as
// after a storage loss: this instance now holds the new one, and so
// disagrees with nobody, but its users' sessions or assertions changed), and
// listed in the inventory.
func (k *keyStore) loaded(name, what string, v []byte) {
	key := k.prefix() + name
	k.keep(name, v)
	if k.heldKeys().remember(key, v) {
		k.logger().Warn("loaded "+what+", which is not the one this process held before: another instance replaced it in storage; "+
			"sessions or assertions made with the old one fail (compare caddy_sgid_key_info across instances)",
			zap.String("key", key))
	}
	k.listInInventory(name)
}

// heldKeys remembers, for the life of the process, fingerprints of the values
// of each key it loaded or generated, by storage key. It is what tells, at a
// reload, that storage lost a key even when it lost the inventory with it.
type heldKeys struct {
	mu sync.Mutex
	m  map[string][]string
}

var processKeys = newHeldKeys()

func newHeldKeys() *heldKeys { return &heldKeys{m: map[string][]string{}} }

func (h *heldKeys) has(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.m[key]
	return ok
}

// remember notes v (a key ring, or a bare value) as the value of key;
// replaced reports that other values were noted before and v keeps none of
// them. A rotation keeps the value it retires for its overlap, so it replaces
// nothing; a key generated anew over a lost one does.
func (h *heldKeys) remember(key string, v []byte) (replaced bool) {
	var fps []string
	if r, err := parseRing(v); err == nil {
		for _, k := range r.Keys {
			fps = append(fps, fingerprint([]byte(k.Value)))
		}
	} else {
		fps = []string{fingerprint(v)}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old, ok := h.m[key]
	h.m[key] = fps
	return ok && !slices.ContainsFunc(old, func(fp string) bool { return slices.Contains(fps, fp) })
}

// parseECKey reads a P-256 private key from PEM (PKCS#8 or SEC 1), with real or
// escaped newlines. Errors never echo the key.
func parseECKey(text string) (*ecdsa.PrivateKey, error) {
	text = strings.TrimSpace(strings.ReplaceAll(text, `\n`, "\n"))
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("signing_key is not PEM text")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		// The label is not echoed: in a mangled key it can be key text.
		return nil, errors.New("signing_key: the PEM block is not an EC private key (want PRIVATE KEY or EC PRIVATE KEY)")
	}
	if err != nil {
		return nil, errors.New("signing_key: the PEM block does not parse as a private key")
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("signing_key must be an ECDSA P-256 key (ES256)")
	}
	return ec, nil
}

// signingKeys resolves the assertion's keys: the HS256 secret, the configured
// ES256 keys, or the site's key generated into storage.
func (h *Handler) signingKeys(expand func(string, string) (string, error), keys *keyStore, s *gateway.Site) ([]*ecdsa.PrivateKey, []byte, error) {
	if h.SigningSecret != "" {
		secret, err := expand("signing_secret", h.SigningSecret)
		if err != nil {
			return nil, nil, err
		}
		return nil, []byte(secret), nil
	}
	if len(h.SigningKeys) == 0 {
		ks, err := keys.signingKeys(s)
		if err != nil {
			return nil, nil, fmt.Errorf("assertion signing key from storage: %w", err)
		}
		return ks, nil, nil
	}
	var ecKeys []*ecdsa.PrivateKey
	for i, text := range h.SigningKeys {
		v, err := expand(fmt.Sprintf("signing_key #%d", i+1), text)
		if err != nil {
			return nil, nil, err
		}
		if err := keyPathHint(fmt.Sprintf("signing_key #%d", i+1), v); err != nil {
			return nil, nil, err
		}
		k, err := parseECKey(v)
		if err != nil {
			return nil, nil, fmt.Errorf("signing_key #%d: %w", i+1, err)
		}
		ecKeys = append(ecKeys, k)
	}
	return ecKeys, nil, nil
}
