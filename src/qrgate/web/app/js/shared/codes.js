// The signed payload behind every qrgate QR code, verified on the phone with no network,
// exactly as qrgate.core.codes does on the server.
//
// Wire format: "QG1:" + Base45(COSE_Sign1(claims)), claims a CBOR map with integer keys:
// 1-5 common to every code (type, id, issued at, expires at, issuer), 6-9 unassigned and
// refused, 10 and up the scheme's own. The envelope must be the exact bytes the server
// writes (tag 18, protected header {1: -7, 4: kid} canonical, empty unprotected header,
// low-S signature), so a signed code cannot be varied into a second valid text.
//
// verifyCode checks in the server's order, cheap checks before the signature: size, prefix,
// Base45, COSE structure, key id, signature, claims structure, code type, validity window.
import { decode as unbase45 } from "./base45.js";
import { Tagged, decodeStrict, encodeCanonical } from "./cbor.js";
import { concat, fromB64u, hex } from "./bytes.js";
import { CodeError } from "./errors.js";

/** The code types (claim 1), as qrgate.core.codes.CodeType. */
export const CodeType = Object.freeze({
  CONFIRM: 1,
  ENROL: 2,
  TXSIGN_CHALLENGE: 3,
  TXSIGN_CHAIN: 4,
  TOKEN_ENROL: 5,
  GRIDCARD: 6,
});

const VERSION = "1";
const PREFIX = `QG${VERSION}:`;
const MAX_CODE_CHARS = 2048;
const FIRST_SCHEME_CLAIM = 10;
const Claim = Object.freeze({ TYPE: 1, ID: 2, IAT: 3, EXP: 4, ISSUER: 5 });
const COMMON_CLAIMS = new Set(Object.values(Claim));

const COSE_SIGN1_TAG_BYTE = 0xd2; // major type 6, tag 18
const HEADER_ALG = 1;
const HEADER_KID = 4;
const ALG_ES256 = -7;
const COORD_LEN = 32;
const HALF_P256_ORDER =
  0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n / 2n;
const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" };
const ES256 = { name: "ECDSA", hash: "SHA-256" };

const KID_LEN = 8;
// The DER SubjectPublicKeyInfo of a P-256 key is this header and the uncompressed point;
// a kid is the first 8 bytes of its SHA-256 (qrgate.core.keyring.kid_for).
const P256_SPKI_HEADER = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
  0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
]);

/**
 * @typedef {object} KeySet The server's code-signing keys, by key id.
 * @property {(kid: Uint8Array) => CryptoKey | undefined} get
 * @property {number} size
 */

class PublicKeySet {
  #keys;

  /** @param {Map<string, CryptoKey>} keys by hex kid */
  constructor(keys) {
    this.#keys = keys;
  }

  /** @param {Uint8Array} kid */
  get(kid) {
    return this.#keys.get(hex(kid));
  }

  get size() {
    return this.#keys.size;
  }
}

/**
 * The keys of the server's JWKS (/v1/keys) as non-extractable ECDSA P-256 verify keys.
 * Entries of other kinds are skipped (a server may publish more algorithms later); a
 * malformed ES256 entry, or one whose kid is not derived from its key, throws CodeError
 * `bad_jwks`.
 * @param {unknown} jwks
 * @returns {Promise<KeySet>}
 */
export async function importJwks(jwks) {
  const entries = isObject(jwks) ? jwks.keys : undefined;
  if (!Array.isArray(entries)) throw new CodeError("bad_jwks", "JWKS needs a 'keys' list");
  const keys = new Map();
  for (const jwk of entries) {
    if (!isObject(jwk)) throw new CodeError("bad_jwks", "JWKS entries must be objects");
    if (isOurKindOfJwk(jwk)) {
      const { kid, key } = await importJwk(jwk);
      keys.set(hex(kid), key);
    }
  }
  return new PublicKeySet(keys);
}

/**
 * The type of a scanned code, read WITHOUT verifying its signature: only to route the text
 * to the screen that verifies it. Throws CodeError `payload_too_large`, `malformed_code` or
 * `unsupported_version` for text that is not a qrgate code.
 * @param {string} text
 * @returns {number}
 */
export function peekCodeType(text) {
  return commonClaims(parseClaims(parseEnvelope(text).payload)).type;
}

/**
 * @typedef {object} VerifiedCode
 * @property {number} type
 * @property {Uint8Array} id
 * @property {number} issuedAt Unix seconds
 * @property {number} expiresAt Unix seconds
 * @property {string} issuer
 * @property {Uint8Array} kid
 * @property {Map<number, unknown>} claims the scheme's claims (keys 10 and up)
 */

/**
 * Verify a scanned code. Throws CodeError: `payload_too_large`, `malformed_code`,
 * `unsupported_version`, `unknown_key` (fetch /v1/keys again and retry), `bad_signature`,
 * `wrong_code_type`, `expired`, `not_yet_valid`.
 * @param {string} text
 * @param {{keys: KeySet, now: number, expectedType: number, leeway?: number}} options
 *   `now` in Unix seconds; `leeway` seconds absorb clock skew both ways
 * @returns {Promise<VerifiedCode>}
 */
export async function verifyCode(text, { keys, now, expectedType, leeway = 5 }) {
  const envelope = parseEnvelope(text);
  const key = keys.get(envelope.kid);
  if (key === undefined) throw new CodeError("unknown_key", `no key with kid ${hex(envelope.kid)}`);
  // RFC 9052 §4.4's Sig_structure, with no external data.
  const signed = encodeCanonical(
    ["Signature1", envelope.protectedRaw, new Uint8Array(0), envelope.payload]);
  if (!(await crypto.subtle.verify(ES256, key, envelope.signature, signed))) {
    throw new CodeError("bad_signature", "signature does not verify");
  }
  const claims = parseClaims(envelope.payload);
  const { type, id, issuedAt, expiresAt, issuer } = commonClaims(claims);
  if (type !== expectedType) throw new CodeError("wrong_code_type", "code is of another kind");
  if (now > expiresAt + leeway) throw new CodeError("expired", "code has expired");
  if (issuedAt > now + leeway) {
    throw new CodeError("not_yet_valid", "code was issued in the future; check the clock");
  }
  const schemeClaims = [...claims].filter(([claim]) => claim >= FIRST_SCHEME_CLAIM);
  return {
    type, id, issuedAt, expiresAt, issuer, kid: envelope.kid, claims: new Map(schemeClaims),
  };
}

/** @param {string} text */
function parseEnvelope(text) {
  if (typeof text !== "string") throw new CodeError("malformed_code", "not a qrgate code");
  // The server counts code points, JavaScript UTF-16 units.
  if (text.length > MAX_CODE_CHARS && Array.from(text).length > MAX_CODE_CHARS) {
    throw new CodeError("payload_too_large", `code longer than ${MAX_CODE_CHARS} characters`);
  }
  return parseOwnSign1(unbase45(checkPrefix(text)));
}

/** @param {string} text */
function checkPrefix(text) {
  if (text.startsWith(PREFIX)) return text.slice(PREFIX.length);
  const versioned = /^QG([0-9]+)/.exec(text);
  if (versioned && versioned[1] !== VERSION) {
    throw new CodeError("unsupported_version", `code version ${versioned[1]} is not supported`);
  }
  throw new CodeError("malformed_code", "not a qrgate code");
}

/**
 * Only the exact bytes the server writes (qrgate.core.cose.parse_own_sign1).
 * @param {Uint8Array} raw
 */
function parseOwnSign1(raw) {
  const item = decodeStrict(raw);
  const body = item instanceof Tagged ? item.value : null;
  if (!Array.isArray(body) || body.length !== 4) {
    throw new CodeError("malformed_code", "not a tagged COSE_Sign1 array of four items");
  }
  const [protectedRaw, unprotected, payload, signature] = body;
  if (!(protectedRaw instanceof Uint8Array && payload instanceof Uint8Array &&
        signature instanceof Uint8Array && signature.length === 2 * COORD_LEN)) {
    throw new CodeError("malformed_code", "COSE_Sign1 fields are not ES256 byte strings");
  }
  const header = decodeStrict(protectedRaw);
  const kid = header instanceof Map ? header.get(HEADER_KID) : undefined;
  if (!(header instanceof Map && header.size === 2 && header.get(HEADER_ALG) === ALG_ES256 &&
        kid instanceof Uint8Array)) {
    throw new CodeError("malformed_code",
      "protected header must hold exactly alg ES256 and the kid");
  }
  const canonical = concat(Uint8Array.of(COSE_SIGN1_TAG_BYTE),
    encodeCanonical([protectedRaw, new Map(), payload, signature]));
  if (hex(raw) !== hex(canonical) || hex(protectedRaw) !== hex(encodeCanonical(header))) {
    throw new CodeError("malformed_code", "COSE envelope is not in canonical form");
  }
  if (BigInt(`0x${hex(signature.subarray(COORD_LEN))}`) > HALF_P256_ORDER) {
    throw new CodeError("malformed_code", "signature is not in low-S form");
  }
  return { protectedRaw, payload, signature, kid };
}

/**
 * @param {Uint8Array} payload
 * @returns {Map<number, unknown>}
 */
function parseClaims(payload) {
  const claims = decodeStrict(payload);
  if (!(claims instanceof Map) || !isPlainValue(claims)) {
    throw new CodeError("malformed_code", "claims must be a CBOR map of plain values");
  }
  for (const claim of claims.keys()) {
    if (!Number.isInteger(claim) || claim < 1) {
      throw new CodeError("malformed_code", "claim keys must be positive integers");
    }
    if (claim < FIRST_SCHEME_CLAIM && !COMMON_CLAIMS.has(claim)) {
      throw new CodeError("malformed_code", `unknown common claim ${claim}`);
    }
  }
  return claims;
}

/** The JSON-like values plus bytes that CBOR carries without tags. @param {unknown} value */
function isPlainValue(value) {
  if (value === null || value instanceof Uint8Array ||
      ["boolean", "number", "string"].includes(typeof value)) {
    return true;
  }
  if (Array.isArray(value)) return value.every(isPlainValue);
  if (value instanceof Map) {
    return [...value].every(([key, item]) =>
      (Number.isInteger(key) || typeof key === "string") && isPlainValue(item));
  }
  return false;
}

/** @param {Map<number, unknown>} claims */
function commonClaims(claims) {
  const type = claims.get(Claim.TYPE);
  const id = claims.get(Claim.ID);
  const issuedAt = claims.get(Claim.IAT);
  const expiresAt = claims.get(Claim.EXP);
  const issuer = claims.get(Claim.ISSUER);
  if (!(Number.isInteger(type) && id instanceof Uint8Array && id.length > 0 &&
        Number.isInteger(issuedAt) && Number.isInteger(expiresAt) &&
        typeof issuer === "string" && issuer !== "")) {
    throw new CodeError("malformed_code", "common claims are missing or of the wrong type");
  }
  if (expiresAt < issuedAt) {
    throw new CodeError("malformed_code", "code expires before it was issued");
  }
  return { type, id, issuedAt, expiresAt, issuer };
}

/** As qrgate.core.keyring: kty EC, crv P-256, and use/alg absent or sig/ES256. */
function isOurKindOfJwk(jwk) {
  const use = Object.hasOwn(jwk, "use") ? jwk.use : "sig";
  const alg = Object.hasOwn(jwk, "alg") ? jwk.alg : "ES256";
  return jwk.kty === "EC" && jwk.crv === "P-256" && use === "sig" && alg === "ES256";
}

/** @param {Record<string, unknown>} jwk */
async function importJwk(jwk) {
  const x = jwkBytes(jwk.x, "x");
  const y = jwkBytes(jwk.y, "y");
  if (x.length !== COORD_LEN || y.length !== COORD_LEN) {
    throw new CodeError("bad_jwks", "JWK P-256 coordinates must be 32 bytes");
  }
  const point = concat(Uint8Array.of(0x04), x, y);
  let key;
  try {
    key = await crypto.subtle.importKey("raw", point, ECDSA_P256, false, ["verify"]);
  } catch {
    throw new CodeError("bad_jwks", "JWK point is not on P-256");
  }
  const kid = jwkBytes(jwk.kid, "kid");
  const spkiDigest = await crypto.subtle.digest("SHA-256", concat(P256_SPKI_HEADER, point));
  if (hex(kid) !== hex(new Uint8Array(spkiDigest, 0, KID_LEN))) {
    throw new CodeError("bad_jwks", "JWK kid does not match its key");
  }
  return { kid, key };
}

/** @param {unknown} value @param {string} field */
function jwkBytes(value, field) {
  try {
    return fromB64u(/** @type {string} */ (value));
  } catch {
    throw new CodeError("bad_jwks", `JWK ${field} is not a base64url string`);
  }
}

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
