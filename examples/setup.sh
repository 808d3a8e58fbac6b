#!/usr/bin/env bash
# Installs what the tests need: staticcheck (Go module proxy), Debian's
# redis-server (the revocation store's tests run a real one, through
# internal/redistest), systemd-analyze from Debian's systemd (it verifies
# examples/caddy-sgid.service; nothing is started), Debian's chromium (the form replay's browser tests,
# test/e2e/form_browser_test.go, drive it headless), and what the upstream verification snippets in
# examples/verify/ need, so that
# examples_test.go can run every one of them: PHP (with its openssl
# extension), PyJWT with cryptography for Debian's /usr/bin/python3, Node.js with
# npm, and the `jose` package for the Node snippet. Debian or Ubuntu; idempotent:
# when everything is there it installs nothing and takes a second.
#
#   bash examples/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

packages=()
if ! command -v php >/dev/null 2>&1 || ! php -r 'exit(function_exists("openssl_verify") && function_exists("hash_hmac") ? 0 : 1);' >/dev/null 2>&1; then
	packages+=(php-cli)
fi
if ! /usr/bin/python3 -c 'import jwt, cryptography' >/dev/null 2>&1; then
	packages+=(python3 python3-jwt python3-cryptography)
fi
if ! command -v node >/dev/null 2>&1; then
	packages+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
	# Node.js builds that are not Debian's bundle npm; Debian's is a package of its own.
	packages+=(npm)
fi
if [ ! -x /usr/bin/redis-server ]; then
	# The tests start it themselves on a free loopback port (internal/redistest);
	# the service the package may enable is not used.
	packages+=(redis-server)
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
	# test/e2e/examples_deploy_test.go runs `systemd-analyze verify` on the unit.
	packages+=(systemd)
fi

if [ ! -x /usr/bin/chromium ]; then
	# Driven headless by the browser tests (chromedp); no display needed.
	packages+=(chromium)
fi

if [ ${#packages[@]} -gt 0 ]; then
	echo "setup: installing ${packages[*]}"
	sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# npm ci only when node_modules is missing or older than the lock file.
node_dir=verify/node
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
	echo "setup: npm ci in examples/$node_dir"
	(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

# staticcheck, which .ci/run runs after go vet: from the Go module proxy, once.
staticcheck_version=v0.8.2
staticcheck="$(go env GOPATH)/bin/staticcheck"
if ! "$staticcheck" -version 2>/dev/null | grep -q "${staticcheck_version#v}"; then
	echo "setup: go install staticcheck@$staticcheck_version"
	go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi

echo "setup: $(/usr/bin/redis-server --version | cut -d' ' -f1-3), $(/usr/bin/chromium --version 2>/dev/null | cut -d' ' -f1-2), php $(php -r 'echo PHP_VERSION;'), PyJWT $(/usr/bin/python3 -c 'import jwt; print(jwt.__version__)'), node $(node --version), jose $(node -p 'require("./'"$node_dir"'/node_modules/jose/package.json").version')"
