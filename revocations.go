package caddysgid

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
)

// revocations holds each site's revocation list, store and syncer for the
// whole process, by what they are kept in: a reload that keeps the site keeps
// its list (no gap in what it knows) and its connection, and the last config
// that uses them stops them.
var revocations = caddy.NewUsagePool()

func init() {
	// go-redis reports failed dials on stderr by itself; the syncer's hooks
	// already log and count an unreachable Redis, once per failure.
	redis.SetLogger(redisLog{})
}

// redisLog sends go-redis's own lines to Caddy's log at DEBUG.
type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if c := caddy.Log().Named("http.handlers.sgid.redis").Check(zap.DebugLevel, "go-redis"); c != nil {
		c.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}

type revocationState struct {
	list   *revocation.List
	store  revocation.Store
	syncer *revocation.Syncer
	site   string // the site's origin
	kind   string // storage or redis
	// life is the session lifetime of the config provisioned last: how long
	// an operator's revocation must be kept.
	life atomic.Int64
}

func (s *revocationState) lifetime() time.Duration { return time.Duration(s.life.Load()) }

// revoke is an operator's revocation: here at once, then in the store. An
// error other than ErrInvalid means the store did not take it yet.
func (s *revocationState) revoke(ctx context.Context, e revocation.Entry) error {
	return s.syncer.Add(ctx, e)
}

// Destruct stops the syncer and closes the store, when no config uses them.
func (s *revocationState) Destruct() error {
	s.syncer.Stop()
	return s.store.Close()
}

// checkRevocationStore is the rule for revocation_store: "storage" or a Redis
// URL. The URL may hold a password, so no error repeats it.
func checkRevocationStore(v string) error {
	_, err := redisOptions(v)
	return err
}

// redisOptions parses a Redis URL; nil for Caddy storage.
func redisOptions(v string) (*redis.Options, error) {
	if v == "" || v == "storage" {
		return nil, nil
	}
	if !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
		return nil, errors.New(`want storage, or a Redis URL (redis:// or rediss://)`)
	}
	opt, err := redis.ParseURL(v)
	if err != nil {
		return nil, errors.New("the Redis URL does not parse: redis://[user:password@]host:port[/db]")
	}
	return opt, nil
}

// openRevocations finds or starts the revocations of the site that cfg is
// for, in Caddy's storage or in Redis, under a prefix that names the site
// (sgID issuer, client id, origin). It makes no call to the store: the
// syncer takes its first snapshot in the background, so Caddy starts while
// the store is down.
func (h *Handler) openRevocations(ctx caddy.Context, expand func(string, string) (string, error), cfg *gateway.Config, issuer string) error {
	url, err := expand("revocation_store", h.RevocationStore)
	if err != nil {
		return err
	}
	opt, err := redisOptions(url)
	if err != nil {
		return fmt.Errorf("revocation_store: %w", err)
	}
	prefix := "sgid/" + digest(issuer, cfg.Client.ClientID) + "/" + digest(cfg.Site.Origin())
	storage := ctx.Storage()
	key := "redis " + digest(url) + " " + prefix
	if opt == nil {
		// Two configs share a list only if they share the storage.
		key = "storage " + storageID(storage) + " " + prefix
	}
	poll := time.Duration(h.RevocationPoll)
	logger := cfg.Logger
	v, _, err := revocations.LoadOrNew(key, func() (caddy.Destructor, error) {
		var store revocation.Store
		if opt != nil {
			store = revocation.NewRedis(opt, prefix)
		} else {
			store = revocation.NewStorage(storage, prefix)
		}
		list := revocation.NewList()
		syncer := revocation.StartSyncer(list, store, revocation.SyncConfig{Interval: poll, Hooks: gateway.SyncHooks(logger, cfg.Site)})
		// The syncer outlives this config (see revocations): no config's
		// logger is torn down under it.
		kind := "storage"
		if opt != nil {
			kind = "redis"
		}
		if poll <= 0 {
			poll = revocation.DefaultInterval
		}
		logger.Info("revocations shared", zap.String("store", kind), zap.String("site", cfg.Site.Origin()), zap.Duration("poll", poll))
		return &revocationState{list: list, store: store, syncer: syncer, site: cfg.Site.Origin(), kind: kind}, nil
	})
	if err != nil {
		return err
	}
	h.revocation = key
	st := v.(*revocationState)
	lifetime := cfg.Lifetime
	if lifetime <= 0 {
		lifetime = session.DefaultLifetime
	}
	st.life.Store(int64(lifetime))
	cfg.Revocations, cfg.Store = st.list, st.store
	return nil
}
