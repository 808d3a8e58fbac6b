package revocation

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/sgidproxy/caddy-sgid/internal/redistest"
)

// backend is one kind of store, for the conformance suite: open returns a
// new Store (another instance) on the same backend, for the site named.
type backend struct {
	open func(t *testing.T, site string) Store
	// keys lists every key the backend holds for site; for Redis, the
	// fields of the revocations hash count as keys.
	keys func(t *testing.T, site string) []string
	// signals is whether Changes is expected to fire.
	signals bool
}

// storageBackend is certmagic's FileStorage on a temporary directory, the
// storage a single-host Caddy cluster shares.
func storageBackend(t *testing.T) backend {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	return backend{
		open: func(t *testing.T, site string) Store {
			s := NewStorage(st, site)
			t.Cleanup(func() { s.Close() })
			return s
		},
		keys: func(t *testing.T, site string) []string {
			keys, err := st.List(context.Background(), site, true)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("listing storage: %v", err)
			}
			var files []string
			for _, k := range keys {
				if info, err := st.Stat(context.Background(), k); err == nil && info.IsTerminal {
					files = append(files, k)
				}
			}
			return files
		},
	}
}

// redisBackend is a real redis-server started for the test.
func redisBackend(t *testing.T) (backend, *redistest.Server) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	return backend{
		open: func(t *testing.T, site string) Store {
			return openRedis(t, srv, site)
		},
		keys: func(t *testing.T, site string) []string {
			ctx := context.Background()
			keys, err := admin.Keys(ctx, site+"/*").Result()
			if err != nil {
				t.Fatalf("listing redis keys: %v", err)
			}
			var out []string
			for _, k := range keys {
				if typ, _ := admin.Type(ctx, k).Result(); typ == "hash" {
					fields, err := admin.HKeys(ctx, k).Result()
					if err != nil {
						t.Fatalf("listing hash fields: %v", err)
					}
					for _, f := range fields {
						out = append(out, k+"/"+f)
					}
					continue
				}
				out = append(out, k)
			}
			return out
		},
		signals: true,
	}, srv
}

func openRedis(t *testing.T, srv *redistest.Server, site string) Store {
	s := NewRedis(&redis.Options{Addr: srv.Addr()}, site)
	t.Cleanup(func() { s.Close() })
	return s
}

// revocationKeys counts the keys of site that hold entries.
func revocationKeys(t *testing.T, b backend, site string) int {
	n := 0
	for _, k := range b.keys(t, site) {
		if strings.HasPrefix(k, site+revocationsDir+"/") {
			n++
		}
	}
	return n
}
