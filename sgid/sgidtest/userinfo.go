package sgidtest

import (
	"crypto/rsa"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// profileAlgs are the JWE algorithms of one Profile.
type profileAlgs struct {
	keyAlg       jose.KeyAlgorithm
	keyEnc       jose.ContentEncryption
	withKID      bool
	dataAlg      jose.KeyAlgorithm
	dataEnc      jose.ContentEncryption
	blockKeySize int
}

func algsFor(p Profile) profileAlgs {
	if p == ProfileObserved {
		return profileAlgs{jose.RSA_OAEP, jose.A128CBC_HS256, true, jose.DIRECT, jose.A256GCM, 32}
	}
	return profileAlgs{jose.RSA_OAEP_256, jose.A256GCM, false, jose.A128GCMKW, jose.A128GCM, 16}
}

// garbageJWE has the five parts of a compact JWE but a header that is not
// one, so a client must get past splitting to notice.
const garbageJWE = "eyJzZ2lkdGVzdCI6ImdhcmJhZ2UifQ.Z2FyYmFnZQ.Z2FyYmFnZQ.Z2FyYmFnZQ.Z2FyYmFnZQ"

func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		invalidToken(w, "a bearer access token is required")
		return
	}
	t, ok := s.lookUpToken(token)
	if !ok {
		invalidToken(w, "the access token is unknown or expired")
		return
	}
	f, profile, _, _ := s.snapshot()
	resp := map[string]any{"sub": PairwiseSub(s.client.ID, t.persona)}
	if f.MismatchedSub {
		resp["sub"] = PairwiseSub(s.client.ID, t.persona+"-someone-else")
	}

	var fields []string
	for _, sc := range t.scopes {
		if sc != "openid" {
			fields = append(fields, sc)
		}
	}
	// With only openid granted the real server sends no key and no data.
	if len(fields) > 0 {
		slices.Sort(fields)
		p, _ := personaByID(t.persona)
		if len(s.data) > 0 {
			p.Data = maps.Clone(p.Data)
			maps.Copy(p.Data, s.data)
		}
		key, data, err := s.encryptUserInfo(algsFor(profile), f, p, fields)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "sgidtest: "+err.Error())
			return
		}
		resp["key"], resp["data"] = key, data
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// invalidToken answers as RFC 6750 section 3.1 describes, with the
// text/plain body sgID documents.
func invalidToken(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, description))
	http.Error(w, description, http.StatusUnauthorized)
}

// encryptUserInfo does sgID's two layers: a fresh block key encrypted to the
// client's RSA key, and each field's value encrypted with the block key.
// fields must be sorted, so that the data faults hit predictable fields.
func (s *Server) encryptUserInfo(a profileAlgs, f Faults, p Persona, fields []string) (key string, data map[string]string, err error) {
	blockKey := randomBytes(a.blockKeySize)
	blockJWK := jose.JSONWebKey{Key: blockKey, Algorithm: string(a.dataAlg)}
	if a.withKID {
		blockJWK.KeyID = "sgidtest-block-" + randomHex(8)
	}
	jwkJSON, err := blockJWK.MarshalJSON()
	if err != nil {
		return "", nil, fmt.Errorf("encoding block key: %w", err)
	}

	recipient := s.client.PublicKey
	if f.KeyForOtherClient {
		other, err := strangerKey()
		if err != nil {
			return "", nil, err
		}
		recipient = &other.key.PublicKey
	}
	keyAlg := a.keyAlg
	if f.KeyRSA1_5 {
		keyAlg = jose.RSA1_5
	}
	if key, err = encryptCompact(jwkJSON, a.keyEnc, rsaRecipient(keyAlg, recipient, a.withKID)); err != nil {
		return "", nil, fmt.Errorf("encrypting block key: %w", err)
	}
	if f.GarbageKey {
		key = garbageJWE
	}

	dataRecipient := jose.Recipient{Algorithm: a.dataAlg, Key: blockKey, KeyID: blockJWK.KeyID}
	enc, err := jose.NewEncrypter(a.dataEnc, dataRecipient, nil)
	if err != nil {
		return "", nil, fmt.Errorf("making data encrypter: %w", err)
	}
	data = make(map[string]string, len(fields))
	for _, field := range fields {
		value, ok := p.Data[field]
		if !ok {
			value = "NA"
		}
		obj, err := enc.Encrypt([]byte(value))
		if err != nil {
			return "", nil, fmt.Errorf("encrypting %s: %w", field, err)
		}
		if data[field], err = obj.CompactSerialize(); err != nil {
			return "", nil, fmt.Errorf("serializing %s: %w", field, err)
		}
	}
	if f.GarbageData {
		data[fields[0]] = garbageJWE
	}
	if f.DataAsJWS {
		last := fields[len(fields)-1]
		if data[last], err = signJWT([]byte(p.Data[last]), s.currentSigningKey()); err != nil {
			return "", nil, err
		}
	}
	return key, data, nil
}

func rsaRecipient(alg jose.KeyAlgorithm, pub *rsa.PublicKey, withKID bool) jose.Recipient {
	r := jose.Recipient{Algorithm: alg, Key: pub}
	if withKID {
		r.KeyID = thumbprint(pub)
	}
	return r
}

func encryptCompact(plaintext []byte, enc jose.ContentEncryption, r jose.Recipient) (string, error) {
	e, err := jose.NewEncrypter(enc, r, nil)
	if err != nil {
		return "", err
	}
	obj, err := e.Encrypt(plaintext)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
