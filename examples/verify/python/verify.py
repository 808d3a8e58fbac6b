#!/usr/bin/python3
"""Verify caddy-sgid's X-Sgid-Assertion header in a Python app.

Needs PyJWT 2.4 or later with cryptography (Debian: python3-jwt
python3-cryptography; pip: "pyjwt[crypto]"). Copy verify() into the app:

    claims = verify(request.headers["X-Sgid-Assertion"],
                    issuer="https://app.example.gov.sg",
                    audience="app.example.gov.sg",
                    jwks_url="https://app.example.gov.sg/.sgid/jwks.json")
    user_id = claims["sub"]; name = claims.get("myinfo.name")

and answer 401 when it raises jwt.PyJWTError.

Command line (exit 0 and the claims as JSON when valid, 1 when not):

    verify.py --jwks URL --iss ISS --aud AUD TOKEN      ES256, keys fetched from URL
    verify.py --secret S --iss ISS --aud AUD TOKEN      HS256 with a shared secret
"""

import argparse
import json
import sys

import jwt

# One client per JWKS URL: it caches the keys and fetches them again when a
# token names a key id it has not seen (the gateway rotated its key).
_jwks_clients = {}


def verify(token, *, issuer, audience, jwks_url=None, secret=None, leeway=30):
    """Return the assertion's claims, or raise jwt.PyJWTError.

    Checks the algorithm (ES256 with jwks_url, HS256 with secret, nothing else),
    the signature, iss, aud, exp and iat. The claims are sub and each forwarded
    field by its name ("myinfo.name").
    """
    if (jwks_url is None) == (secret is None) or secret == "":
        raise ValueError("give jwks_url or secret")
    if jwks_url is not None:
        client = _jwks_clients.get(jwks_url)
        if client is None:
            client = _jwks_clients[jwks_url] = jwt.PyJWKClient(jwks_url)
        key = client.get_signing_key_from_jwt(token).key
        algorithms = ["ES256"]
    else:
        key = secret
        algorithms = ["HS256"]
    # The algorithms allowlist is what stops "alg": "none" and algorithm confusion.
    return jwt.decode(
        token,
        key,
        algorithms=algorithms,
        issuer=issuer,
        audience=audience,
        leeway=leeway,
        options={"require": ["iss", "aud", "sub", "iat", "exp"]},
    )


def main(argv):
    p = argparse.ArgumentParser(description="Verify a caddy-sgid X-Sgid-Assertion.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks", help="URL of the gateway's JWKS (ES256)")
    source.add_argument("--secret", help="shared secret (HS256)")
    p.add_argument("--iss", required=True, help="expected issuer: the gateway site's origin")
    p.add_argument("--aud", required=True, help="expected audience")
    p.add_argument("token")
    args = p.parse_args(argv)
    try:
        claims = verify(args.token, issuer=args.iss, audience=args.aud,
                        jwks_url=args.jwks, secret=args.secret)
    except jwt.PyJWTError as e:
        print(f"invalid assertion: {e}", file=sys.stderr)
        return 1
    json.dump(claims, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
