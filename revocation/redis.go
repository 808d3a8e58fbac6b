package revocation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout is what NewRedis sets each zero timeout of its options
// to (go-redis's own defaults are seconds). Redis answers in well under a
// millisecond; a store that takes longer is down for our purposes, and the
// List serves from memory meanwhile.
const DefaultRedisTimeout = 300 * time.Millisecond

const (
	// pingEvery is how long the subscriber waits for a message before it
	// pings: a connection that stays silent after a ping is dead (a half-open
	// TCP connection after a failover), and is replaced.
	pingEvery = time.Second
	// resubscribeMax caps the wait between two tries to subscribe while
	// Redis is down.
	resubscribeMax = 2 * time.Second
)

// redisStore keeps entries in one Redis hash per site, field name to value,
// so that a snapshot is one or two commands and expired entries are dropped
// by name with one HDEL. Field names carry the expiry (see entryName), so
// nothing but the hash is needed.
type redisStore struct {
	client  *redis.Client
	hash    string // prefix + revocationsDir
	channel string // prefix + changesChannel
	spent   string // prefix + spentDir + "/"
	kept    string // prefix + keptDir + "/"
	timeout time.Duration
	nonce   string // tells this store's own publishes from other instances'
	now     func() time.Time

	changes chan struct{}
	ctx     context.Context // ends the subscriber
	cancel  context.CancelFunc
	done    chan struct{} // closed when the subscriber has returned
	closed  atomic.Bool

	mu sync.Mutex
	ps *redis.PubSub // the subscriber's current subscription

	cacheMu sync.Mutex       // serialises snapshots
	cache   map[string]Entry // by name, as for storage
}

// NewRedis returns a Store kept in the Redis that opt describes, under
// prefix, which names the site (see Store). It connects lazily: a Redis that
// is down at start makes calls fail fast, and they work once it is up.
//
// NewRedis works on a copy of opt: zero Dial, Read and Write timeouts become
// DefaultRedisTimeout, a zero DialerRetries one dial per try, and context
// deadlines are honoured, so that each call of the Store is bounded by one
// dial plus one round trip, retries included.
//
// Add publishes on the site's channel, and a subscriber (one connection of
// its own, replaced whenever it fails or goes silent) turns other instances'
// publishes into Changes signals. It also signals after each subscription,
// since what was published while it was away is lost.
//
// go-redis reports failed dials through its process-wide logger (stderr by
// default); a program that wants them in its own log calls redis.SetLogger.
// Close closes the client.
func NewRedis(opt *redis.Options, prefix string) Store {
	o := *opt
	for _, d := range []*time.Duration{&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout} {
		if *d == 0 {
			*d = DefaultRedisTimeout
		}
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = o.ReadTimeout
	}
	if o.DialerRetries == 0 {
		// One dial per try: go-redis's five, with backoff, would spend a
		// call's whole budget on a Redis that is down; the Syncer retries.
		o.DialerRetries = 1
	}
	o.ContextTimeoutEnabled = true
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	ctx, cancel := context.WithCancel(context.Background())
	r := &redisStore{
		client:  redis.NewClient(&o),
		hash:    prefix + revocationsDir,
		channel: prefix + changesChannel,
		spent:   prefix + spentDir + "/",
		kept:    prefix + keptDir + "/",
		timeout: o.DialTimeout + max(o.ReadTimeout, 0) + max(o.WriteTimeout, 0),
		nonce:   hex.EncodeToString(nonce[:]),
		now:     time.Now,
		changes: make(chan struct{}, 1),
		cache:   make(map[string]Entry),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go r.subscribe()
	return r
}

// call bounds one call of the Store, and refuses it after Close.
func (r *redisStore) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if r.closed.Load() {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	return ctx, cancel, nil
}

func (r *redisStore) Add(ctx context.Context, e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	ctx, cancel, err := r.call(ctx)
	if err != nil {
		return fmt.Errorf("adding revocation: %w", err)
	}
	defer cancel()
	if e.expired(r.now()) {
		return nil
	}
	name, value := e.encode()
	// One round trip; the entry is kept even if the publish is lost, and
	// the receivers' periodic snapshots make up for it.
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.hash, name, value)
		p.Publish(ctx, r.channel, r.nonce+" "+name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("adding revocation to redis: %w", err)
	}
	return nil
}

// Snapshot reads the names (HKEYS) and loads only the entries it has not
// seen (HMGET): names are immutable, so a cached entry is never stale, and a
// snapshot after each Changes signal costs one short round trip and no
// decoding for the entries every instance already holds.
func (r *redisStore) Snapshot(ctx context.Context) ([]Entry, error) {
	ctx, cancel, err := r.call(ctx)
	if err != nil {
		return nil, fmt.Errorf("revocation snapshot: %w", err)
	}
	defer cancel()
	names, err := r.client.HKeys(ctx, r.hash).Result()
	if err != nil {
		return nil, fmt.Errorf("listing revocations in redis: %w", err)
	}
	now := r.now()
	r.cacheMu.Lock()
	defer r.cacheMu.Unlock()
	listed := make(map[string]struct{}, len(names))
	var out []Entry
	var expired, unseen []string
	for _, name := range names {
		expires, ok := nameExpiry(name)
		switch {
		case !ok:
			continue // not ours: leave it alone
		case !now.Before(expires):
			expired = append(expired, name)
			continue
		}
		listed[name] = struct{}{}
		if e, ok := r.cache[name]; ok {
			if !e.expired(now) {
				out = append(out, e)
			}
		} else {
			unseen = append(unseen, name)
		}
	}
	if len(unseen) > 0 {
		values, err := r.client.HMGet(ctx, r.hash, unseen...).Result()
		if err != nil {
			return nil, fmt.Errorf("loading revocations from redis: %w", err)
		}
		for i, v := range values {
			value, ok := v.(string)
			if !ok {
				continue // deleted since HKEYS, by another instance's snapshot
			}
			e, err := decodeEntry(unseen[i], []byte(value))
			if err != nil {
				continue
			}
			r.cache[unseen[i]] = e
			if !e.expired(now) {
				out = append(out, e)
			}
		}
	}
	for name := range r.cache {
		if _, ok := listed[name]; !ok {
			delete(r.cache, name)
		}
	}
	if len(expired) > 0 {
		// Names are immutable and an expired entry is never added again,
		// so deleting by name cannot remove anything live. A failure is
		// retried at the next snapshot.
		_ = r.client.HDel(ctx, r.hash, expired...).Err()
	}
	return out, nil
}

func (r *redisStore) Changes() <-chan struct{} { return r.changes }

// Spend is SET NX with the ttl as expiry: Redis decides which instance came
// first, and drops the state itself.
func (r *redisStore) Spend(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkSpend(key, ttl); err != nil {
		return false, err
	}
	ctx, cancel, err := r.call(ctx)
	if err != nil {
		return false, fmt.Errorf("spending login state: %w", err)
	}
	defer cancel()
	first, err := r.client.SetNX(ctx, r.spent+spentName(key), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("spending login state in redis: %w", err)
	}
	return first, nil
}

// Keep is SET with the ttl as expiry: Redis drops the value itself.
func (r *redisStore) Keep(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKeep(key, value, ttl); err != nil {
		return err
	}
	ctx, cancel, err := r.call(ctx)
	if err != nil {
		return fmt.Errorf("keeping a form: %w", err)
	}
	defer cancel()
	if err := r.client.Set(ctx, r.kept+spentName(key), value, ttl).Err(); err != nil {
		return fmt.Errorf("keeping a form in redis: %w", err)
	}
	return nil
}

// Take is GETDEL: one command, so exactly one of two instances gets it.
func (r *redisStore) Take(ctx context.Context, key string) ([]byte, error) {
	if key == "" {
		return nil, ErrNotKept
	}
	ctx, cancel, err := r.call(ctx)
	if err != nil {
		return nil, fmt.Errorf("taking a kept form: %w", err)
	}
	defer cancel()
	b, err := r.client.GetDel(ctx, r.kept+spentName(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotKept
	}
	if err != nil {
		return nil, fmt.Errorf("taking a kept form from redis: %w", err)
	}
	return b, nil
}

func (r *redisStore) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.cancel()
	r.mu.Lock()
	if r.ps != nil {
		_ = r.ps.Close() // wakes the subscriber from its read
	}
	r.mu.Unlock()
	<-r.done
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("closing redis client: %w", err)
	}
	return nil
}

// subscribe keeps a subscription to the site's channel until Close. go-redis
// reconnects a PubSub after some errors but not after all (a silent dead
// connection), so each failure here gets a new PubSub, after a wait that
// grows while Redis stays down.
func (r *redisStore) subscribe() {
	defer close(r.done)
	defer close(r.changes)
	wait := 100 * time.Millisecond
	for {
		ps := r.client.Subscribe(r.ctx, r.channel) // an error here shows in receive
		r.mu.Lock()
		if r.ctx.Err() != nil {
			r.mu.Unlock()
			_ = ps.Close()
			return
		}
		r.ps = ps
		r.mu.Unlock()
		if r.receive(ps) {
			wait = 100 * time.Millisecond
		}
		_ = ps.Close()
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, resubscribeMax)
	}
}

// receive reads ps until its connection fails. It is true if it got a
// subscription confirmation: Redis was up.
func (r *redisStore) receive(ps *redis.PubSub) (subscribed bool) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(r.ctx, pingEvery)
		if err != nil {
			if r.ctx.Err() != nil || pinged || !isTimeout(err) {
				return subscribed
			}
			if ps.Ping(r.ctx) != nil {
				return subscribed
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed = true
				r.signal()
			}
		case *redis.Message:
			if !strings.HasPrefix(m.Payload, r.nonce+" ") {
				r.signal()
			}
		}
	}
}

func (r *redisStore) signal() {
	select {
	case r.changes <- struct{}{}:
	default: // one pending signal stands for any number of changes
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
