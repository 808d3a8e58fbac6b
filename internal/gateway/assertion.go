package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/sgidproxy/caddy-sgid/session"
)

// signer makes the assertion: a JWT carrying sub and the forwarded fields, for
// upstreams that verify instead of trusting the network path.
type signer struct {
	sign   jose.Signer
	jwks   []byte // the public keys as a JWK Set; nil for HS256
	header string // the protected header every token of this signer has, encoded
}

// newSigner signs with the HS256 secret if there is one, else with the first
// ES256 key, publishing every key's public half.
func newSigner(ecKeys []*ecdsa.PrivateKey, secret []byte) (*signer, error) {
	var s *signer
	if secret != nil {
		if err := session.CheckSecret("signing_secret", string(secret)); err != nil {
			return nil, err
		}
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
			(&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return nil, fmt.Errorf("signing_secret: %w", err)
		}
		s = &signer{sign: js}
	} else {
		if len(ecKeys) == 0 {
			return nil, errors.New("no assertion signing key")
		}
		set := jose.JSONWebKeySet{}
		for _, k := range ecKeys {
			kid, err := KeyID(&k.PublicKey)
			if err != nil {
				return nil, err
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"})
		}
		jwks, err := json.Marshal(set)
		if err != nil {
			return nil, err
		}
		js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ecKeys[0]},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", set.Keys[0].KeyID))
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		s = &signer{sign: js, jwks: jwks}
	}
	// The header is the same in every token: take it from one.
	head, _, _, err := s.signPayload([]byte("{}"))
	if err != nil {
		return nil, err
	}
	s.header = head
	return s, nil
}

// signPayload signs payload and returns the compact token's three segments.
func (s *signer) signPayload(payload []byte) (head, body, sig string, err error) {
	jws, err := s.sign.Sign(payload)
	if err != nil {
		return "", "", "", errors.New("signing the assertion failed")
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", "", "", errors.New("signing the assertion failed")
	}
	head, rest, _ := strings.Cut(token, ".")
	body, sig, _ = strings.Cut(rest, ".")
	return head, body, sig, nil
}

// KeyID is the kid of an ES256 signing key, in the JWKS and the assertion's
// header: the base64url JWK thumbprint (RFC 7638, SHA-256) of its public key.
// Exported so that what an instance logs about its keys is the kid apps see.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	thumb, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(thumb), nil
}

// claimLayout is the order of an assertion's claims for one configuration:
// the registered ones and the forwarded fields, names sorted, each once, a
// forwarded field never in place of a registered claim. It is made once, at
// New: sorting on every cache miss grew the request goroutine's stack.
type claimLayout []claimName

type claimName struct {
	name  string
	claim byte   // one of the registered claims below, or 0 for a session field
	key   string // name as a JSON string and a colon, written once at New
}

// Registered claims.
const (
	claimAud byte = iota + 1
	claimExp
	claimIat
	claimIss
	claimSub
)

func newClaimLayout(fields []Forward) claimLayout {
	l := claimLayout{{name: "aud", claim: claimAud}, {name: "exp", claim: claimExp}, {name: "iat", claim: claimIat}, {name: "iss", claim: claimIss}, {name: "sub", claim: claimSub}}
	for _, f := range fields {
		if !slices.ContainsFunc(l, func(c claimName) bool { return c.name == f.Field }) {
			l = append(l, claimName{name: f.Field})
		}
	}
	slices.SortFunc(l, func(a, b claimName) int { return strings.Compare(a.name, b.name) })
	for i := range l {
		l[i].key = string(appendJSONString(nil, l[i].name)) + ":"
	}
	return l
}

// claims is the assertion's payload for one session, issued at iat: a JSON
// object with its names sorted (layout), written by hand (encoding/json's
// reflection took most of a cache miss's time), and the same bytes for the
// same session, site, time and lifetime. A field the session lacks is left
// out.
func claims(d *session.Data, layout claimLayout, issuer, audience string, iat time.Time, ttl time.Duration) []byte {
	return appendClaims(make([]byte, 0, claimsSize(d, layout, issuer, audience)), d, layout, issuer, audience, iat, ttl)
}

// claimsSize is about what claims writes, enough for it without escapes.
func claimsSize(d *session.Data, layout claimLayout, issuer, audience string) int {
	size := 64 + len(audience) + len(issuer) + len(d.Sub)
	for _, c := range layout {
		if c.claim == 0 {
			v, _ := d.Field(c.name)
			size += len(c.key) + len(v) + 3
		}
	}
	return size
}

// appendClaims appends claims' payload to b.
func appendClaims(b []byte, d *session.Data, layout claimLayout, issuer, audience string, iat time.Time, ttl time.Duration) []byte {
	b = append(b, '{')
	first := true
	for _, c := range layout {
		v, ok := "", true
		switch c.claim {
		case claimAud:
			v = audience
		case claimIss:
			v = issuer
		case claimSub:
			v = d.Sub
		case 0:
			v, ok = d.Field(c.name)
		}
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, c.key...)
		switch c.claim {
		case claimExp:
			b = strconv.AppendInt(b, iat.Add(ttl).Unix(), 10)
		case claimIat:
			b = strconv.AppendInt(b, iat.Unix(), 10)
		default:
			b = appendJSONString(b, v)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, everything
// else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		// A run of bytes that need no escape is appended in one copy: most
		// values are plain ASCII, and this runs on every cache miss.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < utf8.RuneSelf && s[j] != '"' && s[j] != '\\' {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// assertion signs the claims for one session, valid from now for ttl. It
// also returns what the session cookie can carry so that the same token is
// rebuilt later without a signature (fromCarried).
func (s *signer) assertion(d *session.Data, layout claimLayout, issuer, audience string, now time.Time, ttl time.Duration) (token, carried string, err error) {
	head, body, sig, err := s.signPayload(claims(d, layout, issuer, audience, now, ttl))
	if err != nil {
		return "", "", err
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", "", errors.New("signing the assertion failed")
	}
	token = head + "." + body + "." + sig
	return token, encodeCarried(now, token, raw), nil
}

// What a session carries of its assertion: the version, the issue time, a
// digest of the whole token and the signature. The token's header and claims
// are rebuilt from the signer and the session, and used only if the rebuilt
// token digests to the one signed: it is always exactly a token the signer
// made, or none.
const carriedV1 = 1

func encodeCarried(iat time.Time, token string, sig []byte) string {
	sum := sha256.Sum256([]byte(token))
	b := make([]byte, 0, 1+binary.MaxVarintLen64+16+len(sig))
	b = append(b, carriedV1)
	b = binary.AppendVarint(b, iat.Unix())
	b = append(b, sum[:16]...)
	return string(append(b, sig...))
}

// fromCarried rebuilds the assertion a session carries, with its issue time;
// ok is false if it carries none, or one this signer, site, lifetime or
// session would not sign the same (another key after a rotation, another
// assertion_lifetime, changed fields).
func (s *signer) fromCarried(d *session.Data, layout claimLayout, issuer, audience string, ttl time.Duration) (token string, iat time.Time, ok bool) {
	c := d.Carried
	if len(c) < 2 || c[0] != carriedV1 {
		return "", time.Time{}, false
	}
	unix, n := binary.Varint([]byte(c[1:min(len(c), 1+binary.MaxVarintLen64)]))
	if n <= 0 || len(c) < 1+n+16+1 {
		return "", time.Time{}, false
	}
	iat = time.Unix(unix, 0)
	digest, sig := c[1+n:1+n+16], c[1+n+16:]
	// The claims and then the token are built in one pooled buffer, and only
	// a token that digests right is copied out: this runs on every cache
	// miss, and the two buffers of its own it took were a quarter of a miss's
	// bytes allocated.
	bp := tokenBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 { // a huge session's buffer is not kept
			tokenBufs.Put(bp)
		}
	}()
	enc := base64.RawURLEncoding
	payload := appendClaims((*bp)[:0], d, layout, issuer, audience, iat, ttl)
	start := len(payload)
	b := slices.Grow(payload, len(s.header)+2+enc.EncodedLen(len(payload))+enc.EncodedLen(len(sig)))
	payload = b[:start] // b may be a new array
	b = append(b, s.header...)
	b = append(b, '.')
	b = enc.AppendEncode(b, payload)
	b = append(b, '.')
	b = enc.AppendEncode(b, []byte(sig))
	*bp = b
	tok := b[start:]
	if sum := sha256.Sum256(tok); string(sum[:16]) != digest {
		return "", time.Time{}, false
	}
	return string(tok), iat, true
}

// tokenBufs are fromCarried's buffers, sized for a session's claims and token.
var tokenBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
