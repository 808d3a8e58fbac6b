// Command verify checks a caddy-sgid X-Sgid-Assertion, as an upstream Go app
// would: copy Verify and RemoteKeySet from verify.go into the app and call them
// from a middleware:
//
//	keys := &RemoteKeySet{URL: "https://app.example.gov.sg/.sgid/jwks.json"}
//	claims, err := Verify(r.Context(), r.Header.Get("X-Sgid-Assertion"), Options{
//		Issuer: "https://app.example.gov.sg", Audience: "app.example.gov.sg", Keys: keys,
//	})
//	if err != nil { http.Error(w, "unauthorized", http.StatusUnauthorized); return }
//	sub := claims["sub"].(string)
//
// Usage:
//
//	verify --jwks URL --iss ISS --aud AUD TOKEN      ES256, keys fetched from URL
//	verify --secret S --iss ISS --aud AUD TOKEN      HS256 with a shared secret
//
// It prints the claims as JSON and exits 0 when the assertion is valid, and
// exits 1 when it is not.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	jwksURL := flag.String("jwks", "", "URL of the gateway's JWKS (ES256)")
	secret := flag.String("secret", "", "shared secret (HS256)")
	iss := flag.String("iss", "", "expected issuer: the gateway site's origin")
	aud := flag.String("aud", "", "expected audience")
	flag.Parse()
	if flag.NArg() != 1 || *iss == "" || *aud == "" || (*jwksURL == "") == (*secret == "") {
		fmt.Fprintln(os.Stderr, "usage: verify (--jwks URL | --secret S) --iss ISS --aud AUD TOKEN")
		os.Exit(2)
	}
	o := Options{Issuer: *iss, Audience: *aud}
	if *jwksURL != "" {
		o.Keys = &RemoteKeySet{URL: *jwksURL}
	} else {
		o.Secret = []byte(*secret)
	}
	claims, err := Verify(context.Background(), flag.Arg(0), o)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			err = fmt.Errorf("invalid assertion: %w", err)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(claims); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
