<?php
// Verify caddy-sgid's X-Sgid-Assertion header in a PHP app, with nothing but
// PHP's built-in openssl and hash functions (PHP 7.4 or later). Copy the
// sgid_* functions into the app:
//
//   $claims = sgid_verify($_SERVER['HTTP_X_SGID_ASSERTION'] ?? '', [
//       'issuer'   => 'https://app.example.gov.sg',
//       'audience' => 'app.example.gov.sg',
//       'jwks_url' => 'https://app.example.gov.sg/.sgid/jwks.json',
//   ]);
//   $userId = $claims['sub']; $name = $claims['myinfo.name'] ?? null;
//
// and answer 401 when it throws SgidAssertionError. With HS256 give
// 'secret' => getenv('SGID_SIGNING_SECRET') instead of 'jwks_url'.
//
// Command line (exit 0 and the claims as JSON when valid, 1 when not):
//
//   php verify.php --jwks URL --iss ISS --aud AUD TOKEN     ES256, keys fetched from URL
//   php verify.php --secret S --iss ISS --aud AUD TOKEN     HS256 with a shared secret

declare(strict_types=1);

class SgidAssertionError extends RuntimeException
{
}

/**
 * Returns the assertion's claims (sub, and each forwarded field by its name,
 * "myinfo.name"), or throws SgidAssertionError. Checks the algorithm (ES256
 * with jwks_url, HS256 with secret, nothing else), the signature, iss, aud, exp
 * and iat.
 *
 * @param array{issuer: string, audience: string, jwks_url?: string, secret?: string, leeway?: int} $opts
 */
function sgid_verify(string $token, array $opts): array
{
    $hasJwks = isset($opts['jwks_url']);
    if ($hasJwks === isset($opts['secret']) || (!$hasJwks && $opts['secret'] === '')) {
        throw new InvalidArgumentException('give jwks_url or secret');
    }
    $leeway = $opts['leeway'] ?? 30;

    $parts = explode('.', $token);
    if (count($parts) !== 3) {
        throw new SgidAssertionError('not a signed JWT');
    }
    [$h64, $p64, $s64] = $parts;
    $header = sgid_json_object(sgid_b64url_decode($h64));
    $signature = sgid_b64url_decode($s64);
    $signed = $h64 . '.' . $p64;

    // The algorithm is fixed by how the app is configured, never taken from the
    // token: that is what stops "alg": "none" and algorithm confusion.
    $alg = $hasJwks ? 'ES256' : 'HS256';
    if (($header['alg'] ?? null) !== $alg) {
        throw new SgidAssertionError('algorithm is not ' . $alg);
    }
    if ($hasJwks) {
        $kid = $header['kid'] ?? null;
        if (!is_string($kid) || $kid === '') {
            throw new SgidAssertionError('no kid in the header');
        }
        $key = sgid_jwks_key($opts['jwks_url'], $kid);
        // A JWS ES256 signature is r || s, 32 bytes each; openssl wants DER.
        if (strlen($signature) !== 64
            || openssl_verify($signed, sgid_ecdsa_der($signature), $key, OPENSSL_ALGO_SHA256) !== 1) {
            throw new SgidAssertionError('bad signature');
        }
    } else {
        if (!hash_equals(hash_hmac('sha256', $signed, (string) $opts['secret'], true), $signature)) {
            throw new SgidAssertionError('bad signature');
        }
    }

    $claims = sgid_json_object(sgid_b64url_decode($p64));
    $now = time();
    if (($claims['iss'] ?? null) !== $opts['issuer']) {
        throw new SgidAssertionError('wrong issuer');
    }
    $aud = $claims['aud'] ?? null;
    if (!(is_string($aud) && $aud === $opts['audience']) && !(is_array($aud) && in_array($opts['audience'], $aud, true))) {
        throw new SgidAssertionError('wrong audience');
    }
    foreach (['exp', 'iat'] as $name) {
        if (!is_int($claims[$name] ?? null) && !is_float($claims[$name] ?? null)) {
            throw new SgidAssertionError($name . ' is missing');
        }
    }
    if ($claims['exp'] <= $now - $leeway) {
        throw new SgidAssertionError('expired');
    }
    if ($claims['iat'] > $now + $leeway || (isset($claims['nbf']) && $claims['nbf'] > $now + $leeway)) {
        throw new SgidAssertionError('not valid yet');
    }
    if (!is_string($claims['sub'] ?? null) || $claims['sub'] === '') {
        throw new SgidAssertionError('sub is missing');
    }
    return $claims;
}

function sgid_b64url_decode(string $s): string
{
    if (!preg_match('/^[A-Za-z0-9_-]*$/', $s)) {
        throw new SgidAssertionError('not base64url');
    }
    $out = base64_decode(strtr($s, '-_', '+/'), true);
    if ($out === false) {
        throw new SgidAssertionError('not base64url');
    }
    return $out;
}

function sgid_json_object(string $json): array
{
    if (!(json_decode($json, false, 16) instanceof stdClass)) {
        throw new SgidAssertionError('not a JSON object');
    }
    return json_decode($json, true, 16);
}

/** Converts a JWS ECDSA signature (r || s) to the DER that openssl_verify wants. */
function sgid_ecdsa_der(string $rs): string
{
    $der = '';
    foreach ([substr($rs, 0, 32), substr($rs, 32, 32)] as $int) {
        $int = ltrim($int, "\x00");
        if ($int === '' || ord($int[0]) > 0x7f) {
            $int = "\x00" . $int; // DER integers are signed
        }
        $der .= "\x02" . chr(strlen($int)) . $int;
    }
    return "\x30" . chr(strlen($der)) . $der;
}

/**
 * Returns the P-256 public key with this kid from the gateway's JWKS. Keys are
 * kept for 5 minutes and fetched again when a kid is unknown (the gateway
 * rotated its key). The cache lives as long as the PHP process; under PHP-FPM
 * keep the JWKS in APCu or a file to fetch it less often.
 *
 * @return OpenSSLAsymmetricKey|resource
 */
function sgid_jwks_key(string $url, string $kid)
{
    static $cache = [];
    $now = time();
    $entry = $cache[$url] ?? null;
    $usable = $entry !== null && $entry['at'] > $now - 300 && isset($entry['keys'][$kid]);
    // Fetch when the keys are old or the kid is unknown (the gateway rotated
    // its key), but not more than every 10 seconds.
    if (!$usable && ($entry === null || $entry['at'] <= $now - 10)) {
        $entry = $cache[$url] = ['at' => $now, 'keys' => sgid_fetch_jwks($url)];
    }
    if (!isset($entry['keys'][$kid])) {
        throw new SgidAssertionError('unknown kid');
    }
    return $entry['keys'][$kid];
}

function sgid_fetch_jwks(string $url): array
{
    $ctx = stream_context_create(['http' => ['timeout' => 10, 'ignore_errors' => true, 'header' => "Accept: application/json\r\n"]]);
    $body = @file_get_contents($url, false, $ctx, 0, 1 << 20);
    $status = $http_response_header[0] ?? '';
    if ($body === false || !preg_match('#^HTTP/\S+ 200\b#', $status)) {
        throw new SgidAssertionError('fetching ' . $url . ' failed: ' . ($status ?: 'no response'));
    }
    $set = json_decode($body, true);
    $keys = [];
    foreach (is_array($set['keys'] ?? null) ? $set['keys'] : [] as $jwk) {
        if (($jwk['kty'] ?? '') !== 'EC' || ($jwk['crv'] ?? '') !== 'P-256' || !is_string($jwk['kid'] ?? null)
            || ($jwk['alg'] ?? 'ES256') !== 'ES256' || ($jwk['use'] ?? 'sig') !== 'sig') {
            continue;
        }
        $x = sgid_b64url_decode((string) ($jwk['x'] ?? ''));
        $y = sgid_b64url_decode((string) ($jwk['y'] ?? ''));
        if (strlen($x) !== 32 || strlen($y) !== 32) {
            continue;
        }
        // SubjectPublicKeyInfo for an uncompressed P-256 point: a fixed prefix
        // (id-ecPublicKey, prime256v1) then 04 || x || y.
        $spki = hex2bin('3059301306072a8648ce3d020106082a8648ce3d030107034200') . "\x04" . $x . $y;
        $pem = "-----BEGIN PUBLIC KEY-----\n" . chunk_split(base64_encode($spki), 64, "\n") . "-----END PUBLIC KEY-----\n";
        $key = openssl_pkey_get_public($pem);
        if ($key !== false) {
            $keys[$jwk['kid']] = $key;
        }
    }
    return $keys;
}

if (PHP_SAPI === 'cli' && isset($argv[0]) && realpath($argv[0]) === __FILE__) {
    $opts = getopt('', ['jwks:', 'secret:', 'iss:', 'aud:'], $rest);
    $args = array_slice($argv, $rest);
    if ($opts === false || count($args) !== 1 || !isset($opts['iss'], $opts['aud'])
        || isset($opts['jwks']) === isset($opts['secret'])) {
        fwrite(STDERR, "usage: php verify.php (--jwks URL | --secret S) --iss ISS --aud AUD TOKEN\n");
        exit(2);
    }
    $o = ['issuer' => $opts['iss'], 'audience' => $opts['aud']];
    if (isset($opts['jwks'])) {
        $o['jwks_url'] = $opts['jwks'];
    } else {
        $o['secret'] = $opts['secret'];
    }
    try {
        $claims = sgid_verify($args[0], $o);
    } catch (SgidAssertionError $e) {
        fwrite(STDERR, 'invalid assertion: ' . $e->getMessage() . "\n");
        exit(1);
    }
    echo json_encode($claims, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
    exit(0);
}
