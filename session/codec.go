// Package session keeps a logged-in user's session, and each in-flight login, in
// encrypted cookies. Nothing is stored on the server: any number of servers that share
// the secrets serve the same users, and a restart loses nothing.
//
// Values are sealed with XChaCha20-Poly1305, the cookie name (and a session's chunk
// count) as associated data, under a key derived with HKDF-SHA256 from each
// configured secret and the binding (Config.Binding: the issuer, client and site the
// cookies are valid for), so a cookie made for another binding is no session. The
// nonce is 192 random bits, so no count of cookies sealed under one secret makes a
// repeat likely. A value is "~" and the base64url of nonce, ciphertext and tag. The
// values the release before sealed with gorilla/securecookie (AES-256-CTR, then
// HMAC-SHA256) under keys from the same secret and binding still open, so an
// upgrade logs nobody out; every write is in the new form. The first secret seals;
// every secret opens, so secrets rotate without logging anyone out.
// A session too large for one cookie is split across numbered cookies; the number of
// chunks is bound into the MAC, so a missing, reordered or foreign chunk fails
// authentication as a whole.
//
// Over HTTPS every name takes the "__Host-" prefix, and the transport alone decides
// which form is read: only __Host- names over TLS, only plain ones over plain HTTP.
//
// Sizes are bounded so that the cookies can never lock a user out with 431s: a
// session encodes to at most MaxSessionData bytes (MaxChunks cookies), a login attempt
// seals to at most MaxAttemptValue, all of a browser's attempts keep within
// AttemptBudget, and the gateway's whole share of a Cookie header is at most
// MaxCookieHeaderBytes.
//
// The package imports no Caddy and suits any net/http program.
package session

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/crypto/chacha20poly1305"
)

// Kinds of failure a caller may need to tell apart. Every error from Read and
// ReadAttempt matches (errors.Is) exactly one of the first four, and every one of them
// means "no session". No error string holds cookie contents or personal data.
var (
	// ErrNoCookie: the request carries no session cookie (or no cookie for that login
	// attempt).
	ErrNoCookie = errors.New("session: no cookie")
	// ErrInvalid: the cookie is tampered with, truncated, undecodable, sealed with a
	// secret no longer configured or under another binding (or by a release before
	// bindings), or a chunk is missing, reordered or from another session.
	ErrInvalid = errors.New("session: invalid cookie")
	// ErrExpired: the absolute lifetime (or a login attempt's TTL) is over.
	ErrExpired = errors.New("session: expired")
	// ErrIdle: the session was not used within the idle timeout.
	ErrIdle = errors.New("session: idle timeout")
	// ErrTooLarge: Write was given a session that encodes to more than MaxSessionData
	// bytes, or WriteAttempt an attempt that seals to more than MaxAttemptValue.
	ErrTooLarge = errors.New("session: too large for cookies")
)

// errMalformed: the value authenticated, but its payload does not decode.
var errMalformed = fmt.Errorf("%w: malformed payload", ErrInvalid)

// MaxChunks is the most cookies one session is split across: two, of chunkSize
// characters each, so a session's sealed value is at most 7,200 characters, which
// MaxSessionData bytes of encoded session leave room for: about 3.9 KB of field
// names and values, many times a typical choice of myinfo
// fields (a name, an NRIC, a multi-line address: a few hundred bytes). Every later
// request carries the session, and Caddy refuses a request whose headers pass 16 KB
// (431, until the cookies expire), as do other proxies at 8 to 16 KB; two chunks keep
// the gateway's whole share of the Cookie header, with the login attempts, at
// MaxCookieHeaderBytes, leaving room for the application's own cookies.
const MaxChunks = 2

// MaxSessionData is the most bytes of encoded session (see encoding.go) Write
// accepts. It is the most the release before could seal into MaxChunks ×
// chunkSize characters with securecookie (7,200 characters were 5,400 bytes of its
// output; less the timestamp, separators and MAC (44) that left 5,356 characters
// of base64, 4,017 bytes of IV and ciphertext, and 4,001 bytes of payload after
// the 16-byte IV), kept so that what a login can carry does not change with the
// release. Sealed now it takes at most 5,389 characters (see sealedLen), so the
// session's share of the Cookie header is smaller than MaxSessionBytes allows. Of
// those bytes a session spends 13 and its subject on fixed parts, and each field
// its name, its value and a byte of length for each (two from 128 bytes).
const MaxSessionData = 4001

// A session of MaxSessionData must fit MaxChunks cookies.
const _ = uint(MaxChunks*chunkSize - (len(sealMarker) + ((MaxSessionData+sealOverhead)*8+5)/6))

// MaxSessionBytes is the most a session adds to a request's Cookie header (one
// the release before wrote can take all of it; one written now, 5,539 at most): its
// name=value pairs and the "; " between them, with the longest name in the __Host-
// form: 2 × ("__Host-" 7 + name 64 + "=" 1 + 3,600) + the "_1" suffix 2 + the "2."
// count prefix 2 + "; " 2 = 7,350 bytes.
const MaxSessionBytes = MaxChunks*(len(hostPrefix)+maxNameLen+len("=")+chunkSize) +
	(MaxChunks-1)*(len("_1")+len("; ")) + len("2.")

// MaxCookieHeaderBytes is the most the gateway's cookies add to a request's Cookie
// header in a browser that follows its Set-Cookie headers: the session
// (MaxSessionBytes), the login attempts (AttemptBudget) and a "; " before each of
// at most maxAttemptsLimit attempts: 7,350 + 4,096 + 40 = 11,486 bytes, under 12 KB.
const MaxCookieHeaderBytes = MaxSessionBytes + AttemptBudget + maxAttemptsLimit*len("; ")

// maxAttemptsLimit bounds Config.MaxAttempts.
const maxAttemptsLimit = 20

// chunkNameSlots is how many session cookie names the codec knows: the base name
// and "_1" to "_9". Only MaxChunks of them are written and read, but the previous
// release wrote up to ten, so all are stripped from requests and deleted by Write
// and Clear.
const chunkNameSlots = 10

// chunkSize is the most value characters in one cookie. With the longest allowed name,
// the "__Host-" prefix, a chunk suffix, the count prefix and every attribute, a
// Set-Cookie header stays under 3,800 bytes: browsers drop cookies whose name and value
// pass 4,096 bytes.
const chunkSize = 3600

// maxNameLen bounds Config.Name so the chunk size above holds.
const maxNameLen = 64

// hostPrefix makes browsers insist on Secure, Path=/ and no Domain, so a sibling
// subdomain or a plain-HTTP man in the middle cannot plant or overwrite the cookie.
const hostPrefix = "__Host-"

// Cookie name forms: the transport picks one on read (see Read), secure on write.
const (
	plainForm = 0
	hostForm  = 1
)

// HKDF info labels: one secret yields independent keys for each purpose. The
// encoded Config.Binding follows the label in the info (see keyInfo). v2 is the
// first version with a binding: a v1 cookie fails authentication, which is ErrInvalid
// and only means logging in again.
const (
	infoHashKey  = "caddy-sgid session cookie hmac-sha256 v2"
	infoBlockKey = "caddy-sgid session cookie aes-256 v2"
	infoAEADKey  = "caddy-sgid session cookie xchacha20-poly1305 v3"
)

// sealMarker starts every value sealed with the AEAD. Values securecookie sealed
// are base64 of a decimal timestamp, and '~' is not a base64 character.
const sealMarker = "~"

// sealOverhead is what sealing adds to a payload before base64: the nonce and
// the tag.
const sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Defaults of Config, and the shortest secret it takes.
const (
	DefaultLifetime    = 12 * time.Hour
	DefaultIdleTimeout = 30 * time.Minute // or the lifetime, if shorter
	MinSecretLen       = 32
)

// Config configures a Codec. The zero value of every field but Secrets is usable.
type Config struct {
	// Name is the base cookie name: the session is Name, Name_1, Name_2, ... and each
	// login attempt Name_login_<id>; over HTTPS every name gets the "__Host-" prefix.
	// Letters, digits, '-' and '_' only, not starting "__", at most 64. Default:
	// "sgid_session".
	Name string
	// Binding is what the cookies are valid for: the caller passes the sgID issuer,
	// the client id and the site origin, one per element. Every key is derived from
	// each secret and the whole binding, so a cookie sealed under another binding,
	// even with the same secrets, is no session (ErrInvalid): a session made for one
	// site or client cannot be replayed at another that shares the secrets. The parts
	// are length-prefixed before they enter the derivation, so no two different
	// lists bind alike ({"a|b", "c"} is not {"a", "b|c"}); the caller needs no
	// separator or escaping of its own. Order matters. Nil and empty are the same
	// binding, usable by tests and other programs, and unlike {""}. Changing it logs
	// everyone out, as removing every secret would. Default: empty.
	Binding []string
	// Secrets seal and open the cookies; each must be at least 32 bytes of high
	// entropy. Secrets[0] seals new cookies; every secret opens them, so rotate by
	// prepending a new secret and dropping the oldest once Lifetime has passed.
	// Required.
	Secrets [][]byte
	// Lifetime is the absolute session lifetime from login. Default: 12h.
	Lifetime time.Duration
	// IdleTimeout ends a session unused for this long; at most Lifetime. It runs
	// from the last cookie write, and the cookie is rewritten only once a quarter of
	// it has passed (see NeedsRefresh), so a user idle for three quarters of it may
	// already be logged out. Default: 30m, or Lifetime if that is shorter.
	IdleTimeout time.Duration
	// AttemptTTL is how long a login may take from redirect to callback. Default: 10m.
	AttemptTTL time.Duration
	// MaxAttempts is how many logins (tabs) one browser may have in flight; older ones
	// are dropped, as they are when the attempt cookies would pass AttemptBudget. At
	// most 20. Default: 5.
	MaxAttempts int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Codec reads and writes session and login-attempt cookies. It is safe for concurrent
// use.
type Codec struct {
	name        string
	lifetime    time.Duration
	idle        time.Duration
	attemptTTL  time.Duration
	maxAttempts int
	now         func() time.Time

	// sealers[0] seals; all open. One per secret.
	sealers []sealer

	// Names are computed once so the request path builds no strings.
	chunkNames  [2][chunkNameSlots]string // [form][index]: full cookie name of each chunk
	macNames    [2][MaxChunks + 1]string  // [form][count]: name the MAC binds for a session of count chunks
	loginPrefix [2]string                 // [form]: prefix of every attempt cookie name
}

// New validates cfg, fills in defaults and derives the keys.
func New(cfg Config) (*Codec, error) {
	c := &Codec{
		name:        cfg.Name,
		lifetime:    cfg.Lifetime,
		idle:        cfg.IdleTimeout,
		attemptTTL:  cfg.AttemptTTL,
		maxAttempts: cfg.MaxAttempts,
		now:         cfg.Now,
	}
	if c.name == "" {
		c.name = "sgid_session"
	}
	if c.lifetime == 0 {
		c.lifetime = DefaultLifetime
	}
	if c.idle == 0 {
		c.idle = min(DefaultIdleTimeout, c.lifetime)
	}
	if c.attemptTTL == 0 {
		c.attemptTTL = 10 * time.Minute
	}
	if c.maxAttempts == 0 {
		c.maxAttempts = 5
	}
	if c.now == nil {
		c.now = time.Now
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("session: no secrets configured")
	}
	for i, secret := range cfg.Secrets {
		if len(secret) < MinSecretLen {
			return nil, fmt.Errorf("session: secret %d is %d bytes, need at least %d", i, len(secret), MinSecretLen)
		}
		s, err := newSealer(secret, cfg.Binding)
		if err != nil {
			return nil, fmt.Errorf("session: secret %d: %w", i, err)
		}
		c.sealers = append(c.sealers, s)
	}
	for form, prefix := range [2]string{"", hostPrefix} {
		for i := range chunkNameSlots {
			c.chunkNames[form][i] = prefix + c.name
			if i > 0 {
				c.chunkNames[form][i] += "_" + strconv.Itoa(i)
			}
		}
		// Session MAC names carry '.', which no cookie name here can: a session
		// value can never authenticate as an attempt cookie, nor under another
		// chunk count.
		for n := 1; n <= MaxChunks; n++ {
			c.macNames[form][n] = prefix + c.name + "." + strconv.Itoa(n)
		}
		c.loginPrefix[form] = prefix + c.name + "_login_"
	}
	return c, nil
}

// sealer seals and opens values under one secret.
type sealer struct {
	aead   cipher.AEAD                // seals, and opens what it sealed
	legacy *securecookie.SecureCookie // opens what the release before sealed
}

func newSealer(secret []byte, binding []string) (sealer, error) {
	key, err := hkdf.Key(sha256.New, secret, nil, keyInfo(infoAEADKey, binding), chacha20poly1305.KeySize)
	if err != nil {
		return sealer{}, fmt.Errorf("deriving cookie key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return sealer{}, err
	}
	hashKey, blockKey, err := deriveKeys(secret, binding)
	if err != nil {
		return sealer{}, err
	}
	// MaxLength(0): values are chunked and length-checked here, before
	// securecookie sees them. MaxAge(0): expiry is defined by the times inside
	// the sealed payload, judged by Config.Now; securecookie's own check would
	// only repeat it with a clock that cannot be controlled.
	legacy := securecookie.New(hashKey, blockKey).
		SetSerializer(securecookie.NopEncoder{}).
		MaxLength(0).
		MaxAge(0)
	return sealer{aead: aead, legacy: legacy}, nil
}

// deriveKeys turns one secret and the binding into the HMAC-SHA256 key and the
// AES-256 key of the release before, independent of each other and of the AEAD
// key, so no use of the secret weakens another. Session and attempt cookies share these keys (their MAC names
// keep them apart), so the binding covers both by this one derivation.
func deriveKeys(secret []byte, binding []string) (hashKey, blockKey []byte, err error) {
	if hashKey, err = hkdf.Key(sha256.New, secret, nil, keyInfo(infoHashKey, binding), 32); err != nil {
		return nil, nil, fmt.Errorf("deriving hash key: %w", err)
	}
	if blockKey, err = hkdf.Key(sha256.New, secret, nil, keyInfo(infoBlockKey, binding), 32); err != nil {
		return nil, nil, fmt.Errorf("deriving block key: %w", err)
	}
	return hashKey, blockKey, nil
}

// keyInfo is the HKDF info for one key: the label, a zero byte, then the number of
// binding parts and each part, every number a uvarint and every part prefixed by
// its length. The labels differ before either ends and hold no zero byte, so the
// info determines the label and the binding, part by part.
func keyInfo(label string, binding []string) string {
	b := make([]byte, 0, len(label)+1+binary.MaxVarintLen64*(1+len(binding))+64*len(binding))
	b = append(b, label...)
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(len(binding)))
	for _, part := range binding {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return string(b)
}

// CheckName tells a cookie base name the codec can use (Config.Name) from one
// it cannot: letters, digits, '-' and '_', at most 64, not starting "__". The
// error says what is wrong, without the name.
func CheckName(name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("%d characters, at most %d allowed", len(name), maxNameLen)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
			return errors.New("only letters, digits, '-' and '_' allowed")
		}
	}
	// Browsers give names starting "__Host-" or "__Secure-" (in any case) meaning of
	// their own, and the __Host- form is derived here.
	if strings.HasPrefix(name, "__") {
		return errors.New(`must not start with "__"`)
	}
	return nil
}

func (c *Codec) validate() error {
	if err := CheckName(c.name); err != nil {
		return fmt.Errorf("session: cookie name %q: %w", c.name, err)
	}
	switch {
	case c.lifetime < time.Second:
		return fmt.Errorf("session: lifetime %v is too short", c.lifetime)
	case c.idle < time.Second:
		return fmt.Errorf("session: idle timeout %v is too short", c.idle)
	case c.idle > c.lifetime:
		return fmt.Errorf("session: idle timeout %v exceeds lifetime %v", c.idle, c.lifetime)
	case c.attemptTTL < time.Second:
		return fmt.Errorf("session: attempt TTL %v is too short", c.attemptTTL)
	case c.maxAttempts < 1 || c.maxAttempts > maxAttemptsLimit:
		return fmt.Errorf("session: max attempts %d is outside 1 to %d", c.maxAttempts, maxAttemptsLimit)
	}
	return nil
}

// CookieName is the base session cookie name used for a request that is (or is not)
// over HTTPS: further chunks append "_1", "_2", ...
func (c *Codec) CookieName(secure bool) string {
	return c.chunkNames[formOf(secure)][0]
}

func formOf(secure bool) int {
	if secure {
		return hostForm
	}
	return plainForm
}

// seal encrypts and authenticates payload under macName with the first secret.
func (c *Codec) seal(macName string, payload []byte) (string, error) {
	n := chacha20poly1305.NonceSizeX
	b := make([]byte, n, n+len(payload)+chacha20poly1305.Overhead)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: sealing cookie: %w", err)
	}
	b = c.sealers[0].aead.Seal(b, b[:n], payload, []byte(macName))
	v := make([]byte, len(sealMarker)+base64.RawURLEncoding.EncodedLen(len(b)))
	copy(v, sealMarker)
	base64.RawURLEncoding.Encode(v[len(sealMarker):], b)
	return string(v), nil
}

// Seal seals value for purpose under the first secret, as cookies are, so that
// only Open with the same purpose, on a codec of the same secrets and binding,
// opens it: for what a caller keeps elsewhere, such as a form in a shared store.
func (c *Codec) Seal(purpose string, value []byte) (string, error) {
	return c.seal(blobLabel+purpose, value)
}

// Open opens what Seal sealed for purpose. Every failure is ErrInvalid.
func (c *Codec) Open(purpose, sealed string) ([]byte, error) {
	var out []byte
	if _, err := c.open(blobLabel+purpose, sealed, func(plain []byte) bool {
		out = slices.Clone(plain)
		return true
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// blobLabel starts the associated data of what Seal seals. A space is in no
// cookie name, so no cookie value opens as a sealed value, nor the reverse.
const blobLabel = "sealed "

// openBufs are open's buffers, sized for a session's cookies.
var openBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// open authenticates and decrypts value under macName with each secret in turn,
// and passes the plaintext to use, which must not keep it: the buffer is reused.
// Every failure is ErrInvalid; the reasons are dropped since none of them helps a
// caller and a wrong guess among secrets is expected during rotation. which is
// the secret that opened it: 0 is the current one.
func (c *Codec) open(macName, value string, use func(plain []byte) bool) (which int, err error) {
	if rest, ok := strings.CutPrefix(value, sealMarker); ok {
		bp := openBufs.Get().(*[]byte)
		defer func() {
			if cap(*bp) <= 16<<10 { // a huge cookie's buffer is not kept
				openBufs.Put(bp)
			}
		}()
		// One buffer: the decoded value, then room to open it into, since a
		// wrong secret's Open may overwrite its output and the next secret
		// needs the ciphertext intact.
		n := base64.RawURLEncoding.DecodedLen(len(rest))
		b := slices.Grow((*bp)[:0], 2*n)
		*bp = b
		b, err := base64.RawURLEncoding.AppendDecode(b, []byte(rest))
		if err != nil || len(b) < sealOverhead {
			return -1, ErrInvalid
		}
		nonce, sealed := b[:chacha20poly1305.NonceSizeX], b[chacha20poly1305.NonceSizeX:]
		ad := []byte(macName)
		for i, s := range c.sealers {
			if plain, err := s.aead.Open(b[len(b):], nonce, sealed, ad); err == nil {
				if !use(plain) {
					return -1, errMalformed
				}
				return i, nil
			}
		}
		return -1, ErrInvalid
	}
	var plain []byte
	for i, s := range c.sealers {
		if s.legacy.Decode(macName, value, &plain) == nil {
			if !use(plain) {
				return -1, errMalformed
			}
			return i, nil
		}
	}
	return -1, ErrInvalid
}
