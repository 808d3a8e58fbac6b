package caddysgid

import (
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/sgid"
)

// warnUnknownScopes logs a WARN for each scope not in sgID's catalog, with
// the catalog's nearest name when one is close. Scope names are
// configuration, never personal data.
func warnUnknownScopes(logger *zap.Logger, scopes []string) {
	for _, s := range scopes {
		if sgid.InCatalog(s) {
			continue
		}
		fields := []zap.Field{zap.String("scope", s)}
		msg := "sgid scope is not in sgID's data catalog: check its spelling, unless sgID added it since"
		if n, ok := nearest(s, sgid.Catalog()); ok {
			msg = "sgid scope is not in sgID's data catalog: did you mean " + n + "?"
			fields = append(fields, zap.String("did_you_mean", n))
		}
		logger.Warn(msg, fields...)
	}
}
