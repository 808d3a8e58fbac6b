package revocation

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Defaults of SyncConfig.
const (
	DefaultInterval    = 10 * time.Second
	DefaultSyncTimeout = 5 * time.Second
	DefaultRetry       = 500 * time.Millisecond
	// changeGap is the least time between two snapshots that Changes
	// signals ask for: a burst of adds on other instances (a sign-out
	// everywhere, a store healing itself) costs a few snapshots, not one
	// per add, and propagation stays far under a second.
	changeGap = 200 * time.Millisecond
)

// SyncConfig says how a Syncer keeps a List in step with a Store.
type SyncConfig struct {
	// Interval is the time between two full snapshots when nothing signals
	// a change. It bounds how late an instance learns of a revocation made
	// on another when the store cannot signal (Caddy storage), and how late
	// a missed signal is made up for (Redis). Default: DefaultInterval (10s).
	Interval time.Duration
	// Timeout bounds one snapshot, and each add that gives an entry back.
	// Default: DefaultSyncTimeout (5s).
	Timeout time.Duration
	// Retry is the wait after a failed snapshot; it doubles at each failure
	// up to Interval, and is reset by a success. Default: DefaultRetry (500ms).
	Retry time.Duration
	// Hooks report what the Syncer does. Default: none.
	Hooks Hooks
}

// Hooks are called from the Syncer's goroutine, one at a time; they should
// return quickly (count, log) and must not call the Syncer back. Any may be nil.
type Hooks struct {
	// Synced follows each snapshot merged: how many entries it held, and
	// the time since the previous one merged (since the Syncer started,
	// for the first): a lag an operator can alert on.
	Synced func(entries int, sinceLast time.Duration)
	// Failed follows each snapshot or give-back that failed. The List goes
	// on serving the last state it saw.
	Failed func(err error)
	// Restored follows a give-back: n entries the List held that the store
	// had lost or never got were added to it again.
	Restored func(n int)
}

// Syncer keeps a List in step with a Store from a goroutine of its own, so
// that no caller ever waits on the store: a full snapshot at start, then one
// every Interval and one on each Changes signal. When the store is down it
// retries with a growing wait and the List keeps serving; when the store
// comes back without entries the List still holds, they are given back
// (see List.Merge), whichever instance added them.
type Syncer struct {
	list  *List
	store Store
	cfg   SyncConfig

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
}

// StartSyncer starts keeping list in step with store. It returns at once:
// the first snapshot is taken in the background. Stop it with Stop.
func StartSyncer(list *List, store Store, cfg SyncConfig) *Syncer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSyncTimeout
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Syncer{list: list, store: store, cfg: cfg,
		stop: make(chan struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go s.run()
	return s
}

// Add ends sessions: on this instance at once (the List), then on every
// instance (the Store). When the store fails, the error is returned but the
// revocation stands here, and the Syncer gives it to the store once the
// store answers again; a caller should log the error, not undo anything.
// Add waits for the store within ctx: a request handler bounds ctx, since
// the revocation is in force here whatever the store does.
func (s *Syncer) Add(ctx context.Context, e Entry) error {
	if err := s.list.Add(e); err != nil {
		return err
	}
	if err := s.store.Add(ctx, e); err != nil {
		return fmt.Errorf("storing revocation: %w", err)
	}
	return nil
}

// Stop ends the Syncer and waits for its goroutine to return. A snapshot in
// flight is cancelled through its context. Stop does not close the Store.
func (s *Syncer) Stop() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.cancel()
	})
	<-s.done
}

func (s *Syncer) run() {
	defer close(s.done)
	start := time.Now()
	last := start // the last merge, or the start
	changes := s.store.Changes()
	retry := s.cfg.Retry
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-timer.C:
		case _, ok := <-changes:
			if !ok {
				changes = nil // closed store: polls will report it
				continue
			}
			if wait := changeGap - time.Since(last); wait > 0 {
				select {
				case <-s.stop:
					return
				case <-time.After(wait):
				}
			}
		}
		if err := s.sync(last); err != nil {
			s.failed(err)
			timer.Reset(retry)
			retry = min(2*retry, s.cfg.Interval)
			continue
		}
		last = time.Now()
		retry = s.cfg.Retry
		timer.Reset(s.cfg.Interval)
	}
}

// sync takes one snapshot, merges it, and gives back what the store lacks.
func (s *Syncer) sync(last time.Time) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	entries, err := s.store.Snapshot(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("revocation snapshot: %w", err)
	}
	missing := s.list.Merge(entries)
	if h := s.cfg.Hooks.Synced; h != nil {
		h(len(entries), time.Since(last))
	}
	if len(missing) == 0 {
		return nil
	}
	restored := 0
	for _, e := range missing {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
		err := s.store.Add(ctx, e)
		cancel()
		if err != nil {
			// The snapshot itself succeeded: report, and try the rest at
			// the next sync rather than retrying sooner.
			s.failed(fmt.Errorf("giving back a revocation the store lacks: %w", err))
			break
		}
		restored++
	}
	if h := s.cfg.Hooks.Restored; h != nil && restored > 0 {
		h(restored)
	}
	return nil
}

func (s *Syncer) failed(err error) {
	if h := s.cfg.Hooks.Failed; h != nil {
		h(err)
	}
}
