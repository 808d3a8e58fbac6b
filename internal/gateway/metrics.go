package gateway

import (
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgidproxy/caddy-sgid/revocation"
	"go.uber.org/zap"
)

// Why a login failed, as the reason label of caddy_sgid_logins_failed_total. The
// set is fixed and small: a label never carries anything from the request.
const (
	reasonNoAttempt          = "no_attempt"          // callback without a matching attempt cookie: expired, replayed, forged
	reasonCancelled          = "cancelled"           // the user cancelled at sgID
	reasonBadCallback        = "bad_callback"        // state mismatch or no code on the callback
	reasonInvalidGrant       = "invalid_grant"       // code expired, already used, or PKCE mismatch
	reasonInvalidClient      = "invalid_client"      // sgID refused the client credentials: configuration
	reasonSgidUnavailable    = "sgid_unavailable"    // sgID unreachable, timed out or 5xx
	reasonSgidError          = "sgid_error"          // another OAuth error, or an answer outside the protocol
	reasonVerificationFailed = "verification_failed" // ID token, userinfo sub or decryption refused
	reasonSessionWrite       = "session_write"       // the session cookie could not be written
	reasonStartFailed        = "start_failed"        // the login could not be started (attempt cookie)
)

var failureReasons = []string{
	reasonNoAttempt, reasonCancelled, reasonBadCallback, reasonInvalidGrant, reasonInvalidClient,
	reasonSgidUnavailable, reasonSgidError, reasonVerificationFailed, reasonSessionWrite, reasonStartFailed,
}

// sgidEndpoints are the endpoint label values of caddy_sgid_request_duration_seconds.
var sgidEndpoints = []string{"token", "userinfo", "jwks"}

// metrics are process-wide, like reverse_proxy's: Caddy gives each config it
// loads a new registry, and registering the same collectors there keeps the
// counts across reloads. Every sgid handler in a config counts into the same
// series: a handler has no name that is not configuration, and labels hold only
// values from the fixed sets above, never anything about a user.
var metrics = newMetrics()

type gatewayMetrics struct {
	loginsStarted     prometheus.Counter
	loginsCompleted   prometheus.Counter
	loginsFailed      *prometheus.CounterVec
	sgidDuration      *prometheus.HistogramVec
	sessionsRefreshed prometheus.Counter
	requireDenied     prometheus.Counter
	revocations       *prometheus.CounterVec
	storeErrors       prometheus.Counter
	syncLag           *prometheus.GaugeVec
	revocationsLive   *prometheus.GaugeVec
}

// revocationReasons are the reason label values of caddy_sgid_revocations_total.
var revocationReasons = []string{revocation.ReasonLogout, revocation.ReasonEverywhere, revocation.ReasonAdmin}

func newMetrics() *gatewayMetrics {
	const ns, sub = "caddy", "sgid"
	m := &gatewayMetrics{
		loginsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_started_total",
			Help: "Logins started: browsers sent to sgID.",
		}),
		loginsCompleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_completed_total",
			Help: "Logins completed: sessions created after a verified callback.",
		}),
		loginsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logins_failed_total",
			Help: "Logins that failed, by reason.",
		}, []string{"reason"}),
		sgidDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Duration of calls to sgID, by endpoint, failed calls included.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
		sessionsRefreshed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions_refreshed_total",
			Help: "Session cookies rewritten: to slide the idle timeout, to reseal under the current secret, or to carry a newly signed assertion.",
		}),
		requireDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "require_denied_total",
			Help: "Requests with a session refused by the require rules.",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "revocations_total",
			Help: "Revocations made on this instance, by reason: logout, everywhere (a user's sign-out everywhere), admin.",
		}, []string{"reason"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "revocation_store_errors_total",
			Help: "Calls to the revocation store that failed: snapshots, adds and spent login states. Requests with a session never wait on the store.",
		}),
		syncLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "revocation_sync_age_seconds",
			Help: "Time between the last two successful snapshots of the revocation store: how late this instance may learn of a revocation made on another.",
		}, []string{"site"}),
		revocationsLive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "revocations_live",
			Help: "Live revocation entries in the last snapshot.",
		}, []string{"site"}),
	}
	// Every series exists from the start at 0, so rate() and alerts on a
	// reason work before its first occurrence.
	for _, r := range failureReasons {
		m.loginsFailed.WithLabelValues(r)
	}
	for _, r := range revocationReasons {
		m.revocations.WithLabelValues(r)
	}
	for _, e := range sgidEndpoints {
		m.sgidDuration.WithLabelValues(e)
	}
	return m
}

// RegisterMetrics adds the gateway's collectors to a config's registry. They
// are process-wide, like reverse_proxy's: Caddy gives each config it loads a
// new registry, and registering the same collectors there keeps the counts
// across reloads.
func RegisterMetrics(reg prometheus.Registerer) error { return metrics.register(reg) }

func (m *gatewayMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.loginsStarted, m.loginsCompleted, m.loginsFailed, m.sgidDuration, m.sessionsRefreshed, m.requireDenied,
		m.revocations, m.storeErrors, m.syncLag, m.revocationsLive}
}

// register adds the collectors to reg. The second sgid handler of a config finds
// them already there, which is fine.
func (m *gatewayMetrics) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range m.collectors() {
		err := reg.Register(c)
		var dup prometheus.AlreadyRegisteredError
		if err == nil || errors.As(err, &dup) && dup.ExistingCollector == c {
			continue
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (m *gatewayMetrics) observeSgidCall(endpoint string, d time.Duration, _ error) {
	if !slices.Contains(sgidEndpoints, endpoint) {
		return // the label set stays fixed whatever the client adds
	}
	m.sgidDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// loginFailed counts a failed login under its reason.
func (m *gatewayMetrics) loginFailed(reason string) {
	m.loginsFailed.WithLabelValues(reason).Inc()
}

// SyncHooks count and log what the revocation Syncer of site does; the
// site's origin labels its gauges (configuration, never a user's).
func SyncHooks(logger *zap.Logger, site *Site) revocation.Hooks {
	lag, live := metrics.syncLag.WithLabelValues(site.origin), metrics.revocationsLive.WithLabelValues(site.origin)
	return revocation.Hooks{
		Synced: func(entries int, sinceLast time.Duration) {
			lag.Set(sinceLast.Seconds())
			live.Set(float64(entries))
		},
		Failed: func(err error) {
			metrics.storeErrors.Inc()
			logger.Warn("revocation store unavailable: sessions are checked against the last state this instance saw", zap.Error(err))
		},
		Restored: func(n int) {
			logger.Warn("revocation store had lost entries: given back", zap.Int("entries", n))
		},
	}
}
