// Package e2e holds the end-to-end tests: a real Caddy, started in the test
// process by caddytest and reconfigured per test through its admin API, with
// the sgid module in front of an upstream that reports what reached it, and
// the fake sgID server (sgidtest) behind it. The examples/ directory is tested
// here too. The harness is harness_test.go; the tests are grouped by feature.
package e2e
