package gateway

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/revocation"
	"github.com/sgidproxy/caddy-sgid/session"
)

// storeTimeout bounds a call to the revocation store from a request: a logout
// or a login callback, never a request with a session, which checks only the
// in-memory List.
const storeTimeout = 2 * time.Second

// isRevoked reports whether d was ended by a logout, a sign-out everywhere or
// an operator: an in-memory lookup, on every request with a session.
func (g *Gateway) isRevoked(d *session.Data) bool {
	return g.revocations != nil && g.revocations.Revoked(d.ID, d.Sub, d.Created)
}

// revoke ends sessions here at once and, through the store, on every instance.
// A store that fails costs nothing here: the entry is in this instance's List,
// and its Syncer gives the store the entry again once it answers.
func (g *Gateway) revoke(ctx context.Context, e revocation.Entry) {
	if g.revocations == nil {
		return
	}
	if err := g.revocations.Add(e); err != nil {
		g.logger.Error("revocation not recorded", zap.String("reason", e.Reason), zap.Error(err))
		return
	}
	metrics.revocations.WithLabelValues(e.Reason).Inc()
	shared := true
	if g.store != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if err := g.store.Add(ctx, e); err != nil {
			shared = false
			metrics.storeErrors.Inc()
			g.logger.Warn("revocation store unavailable: the revocation holds on this instance and is shared when the store answers",
				zap.String("reason", e.Reason), zap.Error(err))
		}
	}
	g.auditRevoked(e, shared)
}

// spend marks a login attempt's state used, here and, through the store, on
// every instance: a saved attempt cookie replayed with its callback URL is
// refused wherever it lands. With the store down the process's own memory
// still refuses replays on this instance.
func (g *Gateway) spend(r *http.Request, state string) bool {
	if !spentStates.spend(state, AttemptTTL) {
		return false
	}
	if g.store == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	first, err := g.store.Spend(ctx, g.site.origin+" "+state, AttemptTTL)
	if err != nil {
		metrics.storeErrors.Inc()
		g.logger.Warn("revocation store unavailable: a login's state is checked on this instance only", zap.Error(err))
		return true
	}
	return first
}

// sameOrigin tells a request a page of this site sent from one another site
// made a browser send: Sec-Fetch-Site where the browser sends it, else
// Origin. A request with neither is refused: it is not from a browser form.
func (g *Gateway) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	return r.Header.Get("Origin") == g.site.origin
}
