package session

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfig(t *testing.T) {
	ok := [][]byte{secret(1)}
	tests := []struct {
		name string
		cfg  Config
		want string // part of the error
	}{
		{"no secrets", Config{}, "no secrets"},
		{"short secret", Config{Secrets: [][]byte{secret(1), []byte("too short")}}, "secret 1 is 9 bytes"},
		{"name with a space", Config{Secrets: ok, Name: "my session"}, "only letters"},
		{"name with a dot", Config{Secrets: ok, Name: "a.b"}, "only letters"},
		{"name with a browser prefix", Config{Secrets: ok, Name: "__Host-s"}, "must not start"},
		{"name too long", Config{Secrets: ok, Name: strings.Repeat("n", 65)}, "at most 64"},
		{"idle timeout beyond lifetime", Config{Secrets: ok, Lifetime: time.Hour, IdleTimeout: 2 * time.Hour}, "exceeds lifetime"},
		{"negative lifetime", Config{Secrets: ok, Lifetime: -time.Hour}, "lifetime"},
		{"negative attempt TTL", Config{Secrets: ok, AttemptTTL: -time.Minute}, "attempt TTL"},
		{"too many attempts", Config{Secrets: ok, MaxAttempts: 21}, "max attempts"},
		{"negative attempts", Config{Secrets: ok, MaxAttempts: -1}, "max attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{Secrets: [][]byte{secret(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if c.name != "sgid_session" || c.lifetime != 12*time.Hour || c.idle != 30*time.Minute ||
		c.attemptTTL != 10*time.Minute || c.maxAttempts != 5 || c.now == nil {
		t.Errorf("defaults: name %q lifetime %v idle %v attempt TTL %v max attempts %d",
			c.name, c.lifetime, c.idle, c.attemptTTL, c.maxAttempts)
	}
}

func TestDeriveKeysGivesIndependentKeys(t *testing.T) {
	h1, b1, err := deriveKeys(secret(1))
	if err != nil {
		t.Fatal(err)
	}
	h2, b2, _ := deriveKeys(secret(2))
	h1again, _, _ := deriveKeys(secret(1))
	switch {
	case len(h1) != 32 || len(b1) != 32:
		t.Errorf("key lengths %d and %d, want 32 (HMAC-SHA256, AES-256)", len(h1), len(b1))
	case bytes.Equal(h1, b1):
		t.Error("hash and block keys are equal")
	case bytes.Equal(h1, secret(1)) || bytes.Equal(b1, secret(1)):
		t.Error("a key is the raw secret")
	case bytes.Equal(h1, h2) || bytes.Equal(b1, b2):
		t.Error("two secrets gave the same key")
	case !bytes.Equal(h1, h1again):
		t.Error("derivation is not deterministic: servers sharing a secret would not share sessions")
	}
}

func TestCodecsSharingSecretsShareSessions(t *testing.T) {
	// Two servers behind a load balancer: each builds its own Codec from the same
	// secrets, with no other shared state.
	a, _ := newCodec(t, nil)
	b, _ := newCodec(t, nil)
	br := newBrowser(t)
	br.write(a, typicalData(), true)
	if _, err := b.Read(br.request()); err != nil {
		t.Errorf("second server: %v", err)
	}
}
