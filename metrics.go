package caddysgid

import (
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/sgidproxy/caddy-sgid/internal/gateway"
)

// provisionMetrics registers the gateway's metrics in the config's registry.
func provisionMetrics(ctx caddy.Context, logger *zap.Logger) {
	if reg := ctx.GetMetricsRegistry(); reg != nil {
		// A clash with someone else's collector costs the metric, never the config.
		if err := gateway.RegisterMetrics(reg); err != nil {
			logger.Warn("sgid metrics not registered", zap.Error(err))
		}
	}
}
