package caddysgid

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// A fingerprint names a secret the same way every time and in every release
// (the pinned value: instances of two versions must print the same), differs
// between secrets, has one length whatever the secret, and is neither the
// secret nor a plain hash of it.
func TestFingerprintIsStableDistinctAndRevealsNothing(t *testing.T) {
	const pinned = "0123456789abcdef0123456789abcdef0123456789a"
	if got, want := fingerprint([]byte(pinned)), "JLYbHi_VKHA"; got != want {
		t.Errorf("fingerprint(pinned secret) = %s, want %s: every instance of every version must agree", got, want)
	}
	seen := map[string]string{}
	for _, secret := range []string{pinned, pinned + "b", strings.Repeat("x", 32), strings.Repeat("x", 33), NewSessionSecret(), NewSessionSecret(), strings.Repeat("long", 1000)} {
		fp := fingerprint([]byte(secret))
		if again := fingerprint([]byte(secret)); again != fp {
			t.Errorf("two fingerprints of one secret: %s, %s", fp, again)
		}
		if len(fp) != 11 {
			t.Errorf("fingerprint %q is %d characters, want 11 (8 bytes, base64url) for every secret", fp, len(fp))
		}
		if other, ok := seen[fp]; ok && other != secret {
			t.Errorf("two secrets share the fingerprint %s", fp)
		}
		seen[fp] = secret
		plain := sha256.Sum256([]byte(secret))
		if strings.Contains(secret, fp) || fp == base64.RawURLEncoding.EncodeToString(plain[:8]) {
			t.Errorf("fingerprint %s is part of the secret or of its plain SHA-256", fp)
		}
	}
}

// report logs, at INFO, each session secret's fingerprint and each signing
// key's kid (the JWKS's), with the site, and exports the same as
// caddy_sgid_key_info, in the config's registry: a second handler of the
// config adds to it, a key two handlers share is one series, and a reload's
// config has its own, so what the reload dropped is gone.
func TestKeyInfoLogsAndExportsWhatAHandlerHolds(t *testing.T) {
	tk := newTestKeys(t)
	k, logs := tk.instance(nil, nil)
	secrets := [][]byte{[]byte(NewSessionSecret()), []byte(NewSessionSecret())}
	pemText, key, kid := newSigningKey(t)
	k.report(tk.site, keySources{sessionSecrets: "config", signingKeys: "storage"}, secrets, []*ecdsa.PrivateKey{key})

	lines := logs.FilterLevelExact(zapcore.InfoLevel).FilterMessage("sgid keys").All()
	if len(lines) != 1 {
		t.Fatalf("%d INFO lines \"sgid keys\", want 1: %v", len(lines), logs.All())
	}
	if l := lines[0]; l.LoggerName != "http.handlers.sgid" {
		t.Errorf("logger %q, want http.handlers.sgid", l.LoggerName)
	}
	f := lines[0].ContextMap()
	fps := []any{fingerprint(secrets[0]), fingerprint(secrets[1])}
	if f["site"] != "https://app.example:8443" || fmt.Sprint(f["session_secrets"]) != fmt.Sprint(fps) ||
		fmt.Sprint(f["signing_keys"]) != fmt.Sprint([]any{kid}) || f["session_secrets_from"] != "config" || f["signing_keys_from"] != "storage" {
		t.Errorf("logged %v; want the site, fingerprints %v and kid %s, and where each came from", f, fps, kid)
	}
	checkNoKeyMaterial(t, logs, secrets[0], secrets[1], []byte(pemText))

	want := []string{
		"site=https://app.example:8443 kind=session_secret id=" + fingerprint(secrets[0]),
		"site=https://app.example:8443 kind=session_secret id=" + fingerprint(secrets[1]),
		"site=https://app.example:8443 kind=signing_key id=" + kid,
	}
	reg := tk.ctx.GetMetricsRegistry()
	if got := keyInfoSeries(t, reg); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("caddy_sgid_key_info series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A second handler of the same config: another site, and the same
	// secret as the first.
	other, err := gateway.NewSite("https://other.example/.sgid/callback", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := tk.instance(nil, nil)
	k2.report(other, keySources{sessionSecrets: "config", signingKeys: "signing_secret"}, secrets[:1], nil)
	k3, _ := tk.instance(nil, nil) // a third handler, of the first site
	k3.report(tk.site, keySources{sessionSecrets: "config", signingKeys: "storage"}, secrets[:1], nil)
	want = append(want, "site=https://other.example kind=session_secret id="+fingerprint(secrets[0]))
	if got := keyInfoSeries(t, reg); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("after a second handler, caddy_sgid_key_info series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A reload to a config without the first site, and another secret.
	next := newTestKeys(t) // its own caddy.Context, with its own registry
	reloaded, _ := next.instance(nil, nil)
	newSecret := []byte(NewSessionSecret())
	reloaded.report(other, keySources{sessionSecrets: "config", signingKeys: "signing_secret"}, [][]byte{newSecret}, nil)
	want = []string{"site=https://other.example kind=session_secret id=" + fingerprint(newSecret)}
	if got := keyInfoSeries(t, next.ctx.GetMetricsRegistry()); !slices.Equal(got, want) {
		t.Errorf("after a reload, caddy_sgid_key_info series:\n%s\nwant only the new config's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Someone else's collector of the same name costs the metric, never the
// provisioning, and says so.
func TestKeyInfoNameTakenIsAWarning(t *testing.T) {
	tk := newTestKeys(t)
	tk.ctx.GetMetricsRegistry().MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "caddy_sgid_key_info", Help: "someone else's"}))
	k, logs := tk.instance(nil, nil)
	k.report(tk.site, keySources{}, [][]byte{[]byte(NewSessionSecret())}, nil)
	if logs.FilterLevelExact(zapcore.WarnLevel).FilterMessage("sgid key metric not registered").Len() != 1 {
		t.Errorf("no WARN for the metric left out: %v", logs.All())
	}
	if logs.FilterMessage("sgid keys").Len() != 1 {
		t.Error("the keys were not logged")
	}
}

// keyInfoSeries gathers reg (a pedantic registry, as Caddy's, so an
// inconsistent collector fails here) and returns caddy_sgid_key_info's series
// as "site=... kind=... id=...", sorted.
func keyInfoSeries(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != "caddy_sgid_key_info" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if v := m.GetGauge().GetValue(); v != 1 {
				t.Errorf("series %v is %v, want 1", labels, v)
			}
			out = append(out, fmt.Sprintf("site=%s kind=%s id=%s", labels["site"], labels["kind"], labels["id"]))
		}
	}
	slices.Sort(out)
	return out
}

// Provisioning reports the keys the handler holds, wherever they come from:
// configured secrets and keys, storage, or an HS256 signing_secret (no kid).
func TestKeyInfoReportsTheKeysOfEverySource(t *testing.T) {
	s1, s2, hs := NewSessionSecret(), NewSessionSecret(), NewSessionSecret()
	pemText, _, kid := newSigningKey(t)
	expand := func(_, v string) (string, error) { return v, nil }
	for _, tt := range []struct {
		name string
		h    Handler
		// want is the logged line's fields, printed; <secret> and <kid> stand
		// for the fingerprint and kid of what storage holds
		want map[string]string
	}{
		{"configured", Handler{SessionSecrets: []string{s1, s2}, SigningKeys: []string{pemText}}, map[string]string{
			"session_secrets": "[" + fingerprint([]byte(s1)) + " " + fingerprint([]byte(s2)) + "]", "session_secrets_from": "config",
			"signing_keys": "[" + kid + "]", "signing_keys_from": "config"}},
		{"storage", Handler{}, map[string]string{
			"session_secrets": "[<secret>]", "session_secrets_from": "storage",
			"signing_keys": "[<kid>]", "signing_keys_from": "storage"}},
		{"HS256", Handler{SigningSecret: hs}, map[string]string{
			"session_secrets": "[<secret>]", "session_secrets_from": "storage",
			"signing_keys": "[]", "signing_keys_from": "signing_secret"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tk := newTestKeys(t)
			k, logs := tk.instance(nil, nil)
			// As resolve does: the keys, then the report of them.
			secrets, err := tt.h.sessionSecrets(expand, k)
			if err != nil {
				t.Fatal(err)
			}
			ecKeys, _, err := tt.h.signingKeys(expand, k, tk.site)
			if err != nil {
				t.Fatal(err)
			}
			k.report(tk.site, tt.h.keySources(), secrets, ecKeys)
			var stored []string // placeholder, value
			if v := tk.stored(k, sessionSecretName); v != nil {
				stored = append(stored, "<secret>", fingerprint(v))
			}
			if v := tk.stored(k, signingKeyName(tk.site)); v != nil {
				storedKey, err := parseECKey(string(v))
				if err != nil {
					t.Fatal(err)
				}
				storedKid, err := gateway.KeyID(&storedKey.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				stored = append(stored, "<kid>", storedKid)
			}
			placeholders := strings.NewReplacer(stored...)
			lines := logs.FilterMessage("sgid keys").All()
			if len(lines) != 1 {
				t.Fatalf("%d \"sgid keys\" lines, want 1", len(lines))
			}
			got := lines[0].ContextMap()
			for field, want := range tt.want {
				if want = placeholders.Replace(want); fmt.Sprint(got[field]) != want {
					t.Errorf("%s = %v, want %v", field, got[field], want)
				}
			}
			checkNoKeyMaterial(t, logs, []byte(s1), []byte(s2), []byte(hs), []byte(pemText))
		})
	}
}

// newSigningKey is a fresh ES256 key as PEM, parsed, and its kid.
func newSigningKey(t *testing.T) (pemText string, key *ecdsa.PrivateKey, kid string) {
	t.Helper()
	pemText, err := NewSigningKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if key, err = parseECKey(pemText); err != nil {
		t.Fatal(err)
	}
	if kid, err = gateway.KeyID(&key.PublicKey); err != nil {
		t.Fatal(err)
	}
	return pemText, key, kid
}
