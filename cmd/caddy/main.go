// Command caddy is Caddy with its standard modules plus the sgid handler, for
// those who build without xcaddy: go build ./cmd/caddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sgidproxy/caddy-sgid"
)

func main() {
	caddycmd.Main()
}
