package sgid

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

// Identity is what a completed login yields.
type Identity struct {
	// Sub is the pairwise user id: stable for this person at this client only.
	Sub string
	// Data maps each granted scope other than openid ("myinfo.name", ...) to its
	// decrypted value. Values are strings exactly as sgID sent them ("NA" when the
	// person has no such data; some are stringified JSON).
	Data map[string]string
}

// The algorithm family sgID servers are seen to use, and nothing else: no RSA1_5,
// no "none", no password-based or ECDH key agreement.
var (
	keyAlgorithms  = []jose.KeyAlgorithm{jose.RSA_OAEP, jose.RSA_OAEP_256}
	dataAlgorithms = []jose.KeyAlgorithm{
		jose.DIRECT,
		jose.A128GCMKW, jose.A192GCMKW, jose.A256GCMKW,
		jose.A128KW, jose.A192KW, jose.A256KW,
	}
	contentEncryptions = []jose.ContentEncryption{
		jose.A128GCM, jose.A192GCM, jose.A256GCM,
		jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512,
	}
)

type userInfoResponse struct {
	Sub  string            `json:"sub"`
	Key  string            `json:"key"`
	Data map[string]string `json:"data"`
}

// Callback completes a login: it checks the callback query against req, exchanges
// the code, verifies the ID token and fetches and decrypts the user's data.
//
// The ID token is verified while userinfo is fetched: the access token came
// straight from sgID's token endpoint, so sending it back to sgID risks nothing,
// and the verification then costs the login no time. Nothing fetched is used
// unless the ID token verified, and a bad ID token is the error reported even
// when the userinfo call failed too.
func (c *Client) Callback(ctx context.Context, query url.Values, req *AuthRequest) (*Identity, error) {
	code, err := CheckCallback(query, req)
	if err != nil {
		return nil, err
	}
	tr, err := c.redeem(ctx, code, req)
	if err != nil {
		return nil, err
	}
	type verified struct {
		tok *Tokens
		err error
	}
	done := make(chan verified, 1)
	go func() {
		tok, err := c.verifyIDToken(ctx, tr.IDToken, req.Nonce, tr.AccessToken)
		done <- verified{tok, err}
	}()
	ur, fetchErr := c.fetchUserInfo(ctx, tr.AccessToken)
	v := <-done
	if v.err != nil {
		return nil, v.err
	}
	if fetchErr != nil {
		return nil, fetchErr
	}
	return c.openUserInfo(ur, v.tok)
}

// UserInfo fetches the user's data with the access token, checks that it belongs
// to the ID token's sub and decrypts it.
func (c *Client) UserInfo(ctx context.Context, tok *Tokens) (*Identity, error) {
	ur, err := c.fetchUserInfo(ctx, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	return c.openUserInfo(ur, tok)
}

// fetchUserInfo is the userinfo call: the GET and the JSON, nothing checked yet.
func (c *Client) fetchUserInfo(ctx context.Context, accessToken string) (*userInfoResponse, error) {
	const endpoint = "userinfo"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.userURL, nil)
	if err != nil {
		return nil, &UnavailableError{Endpoint: endpoint, Err: err}
	}
	hreq.Header.Set("Authorization", "Bearer "+accessToken)
	var ur userInfoResponse
	if err := c.callJSON(ctx, endpoint, hreq, maxUserInfoBody, &ur); err != nil {
		return nil, err
	}
	return &ur, nil
}

// openUserInfo checks that the userinfo answer is the verified ID token's user and
// decrypts its data.
func (c *Client) openUserInfo(ur *userInfoResponse, tok *Tokens) (*Identity, error) {
	if ur.Sub == "" {
		return nil, &ResponseError{Endpoint: "userinfo", Reason: "no sub"}
	}
	if subtle.ConstantTimeCompare([]byte(ur.Sub), []byte(tok.Sub)) != 1 {
		return nil, ErrSubMismatch
	}
	data, err := c.decrypt(ur.Key, ur.Data)
	if err != nil {
		return nil, err
	}
	return &Identity{Sub: ur.Sub, Data: data}, nil
}

// decrypt undoes sgID's two layers: key is the block key encrypted to the client's
// RSA key; each data value is encrypted with the block key. No key and no data is
// an empty data set (only openid was granted).
func (c *Client) decrypt(key string, data map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(data))
	if key == "" {
		if len(data) > 0 {
			return nil, &ResponseError{Endpoint: "userinfo", Reason: "data without a key"}
		}
		return out, nil
	}
	blockKey, err := c.decryptBlockKey(key)
	if err != nil {
		return nil, err
	}
	for field, enc := range data {
		if CheckScopes([]string{"openid", field}) != nil || field == "openid" {
			return nil, &ResponseError{Endpoint: "userinfo", Reason: "a data member name is not a scope"}
		}
		plain, err := decryptField(blockKey, enc)
		if err != nil {
			return nil, &DecryptionError{Field: field, Err: err}
		}
		out[field] = plain
	}
	return out, nil
}

// DecryptUserInfo decrypts a userinfo key and data set with this client's private
// key, as UserInfo does, for callers that fetch userinfo themselves.
func (c *Client) DecryptUserInfo(key string, data map[string]string) (map[string]string, error) {
	return c.decrypt(key, data)
}

// decryptBlockKey opens the outer layer: a JWE for the client's RSA key whose
// plaintext is a symmetric JWK.
func (c *Client) decryptBlockKey(key string) (any, error) {
	obj, err := jose.ParseEncryptedCompact(key, keyAlgorithms, contentEncryptions)
	if err != nil {
		return nil, &DecryptionError{Field: "key", Err: err}
	}
	plain, err := obj.Decrypt(c.key)
	if err != nil {
		return nil, &DecryptionError{Field: "key", Err: err}
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(plain, &jwk); err != nil {
		return nil, &DecryptionError{Field: "key", Err: errors.New("block key is not a JSON Web Key")}
	}
	raw, ok := jwk.Key.([]byte)
	if !ok || len(raw) == 0 {
		return nil, &DecryptionError{Field: "key", Err: errors.New("block key is not a symmetric (oct) key")}
	}
	return raw, nil
}

func decryptField(blockKey any, enc string) (string, error) {
	obj, err := jose.ParseEncryptedCompact(enc, dataAlgorithms, contentEncryptions)
	if err != nil {
		return "", err
	}
	plain, err := obj.Decrypt(blockKey)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(plain) {
		return "", errors.New("value is not UTF-8")
	}
	return string(plain), nil
}
