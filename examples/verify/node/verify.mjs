#!/usr/bin/env node
// Verify caddy-sgid's X-Sgid-Assertion header in a Node.js app, with the `jose`
// package (npm install jose). Copy verify() into the app:
//
//   const claims = await verify(req.headers["x-sgid-assertion"], {
//     issuer: "https://app.example.gov.sg",
//     audience: "app.example.gov.sg",
//     jwksUrl: "https://app.example.gov.sg/.sgid/jwks.json",
//   });
//   const userId = claims.sub, name = claims["myinfo.name"];
//
// and answer 401 when it throws.
//
// Command line (exit 0 and the claims as JSON when valid, 1 when not):
//
//   node verify.mjs --jwks URL --iss ISS --aud AUD TOKEN     ES256, keys fetched from URL
//   node verify.mjs --secret S --iss ISS --aud AUD TOKEN     HS256 with a shared secret

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createRemoteJWKSet, errors, jwtVerify } from "jose";

// One key set per JWKS URL: it caches the keys and fetches them again when a
// token names a key id it has not seen (the gateway rotated its key).
const keySets = new Map();

// verify returns the assertion's claims (sub, and each forwarded field by its
// name, "myinfo.name"), or throws. It checks the algorithm (ES256 with jwksUrl,
// HS256 with secret, nothing else), the signature, iss, aud, exp and iat.
export async function verify(token, { issuer, audience, jwksUrl, secret, clockTolerance = 30 }) {
  if (!jwksUrl === !secret) {
    throw new TypeError("give jwksUrl or secret");
  }
  let key;
  let algorithms;
  if (jwksUrl) {
    key = keySets.get(jwksUrl);
    if (!key) {
      key = createRemoteJWKSet(new URL(jwksUrl));
      keySets.set(jwksUrl, key);
    }
    algorithms = ["ES256"];
  } else {
    key = new TextEncoder().encode(secret);
    algorithms = ["HS256"];
  }
  // The algorithms allowlist is what stops "alg": "none" and algorithm confusion.
  const { payload } = await jwtVerify(token, key, {
    algorithms,
    issuer,
    audience,
    clockTolerance,
    requiredClaims: ["iss", "aud", "sub", "iat", "exp"],
  });
  return payload;
}

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        jwks: { type: "string" },
        secret: { type: "string" },
        iss: { type: "string" },
        aud: { type: "string" },
      },
      allowPositionals: true,
    });
  } catch (e) {
    parsed = null;
  }
  const v = parsed?.values ?? {};
  if (!parsed || parsed.positionals.length !== 1 || !v.iss || !v.aud || !v.jwks === !v.secret) {
    console.error("usage: node verify.mjs (--jwks URL | --secret S) --iss ISS --aud AUD TOKEN");
    return 2;
  }
  try {
    const claims = await verify(parsed.positionals[0], {
      issuer: v.iss,
      audience: v.aud,
      jwksUrl: v.jwks,
      secret: v.secret,
    });
    console.log(JSON.stringify(claims));
    return 0;
  } catch (e) {
    if (e instanceof errors.JOSEError) {
      console.error(`invalid assertion: ${e.code}: ${e.message}`);
    } else {
      console.error(`invalid assertion: could not verify: ${e.message}`);
    }
    return 1;
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
