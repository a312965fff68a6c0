// OCRA (RFC 6287), the phone's software token of scheme E, computed as qrgate.core.ocra
// computes it (on the `oath` package), with the HMAC in WebCrypto so the token's secret
// lives in a non-extractable key.
//
// Suites: the RFC 6287 §6 grammar in its explicit form,
// OCRA-1:HOTP-{SHA1|SHA256|SHA512}-{4..10}:[C-]Q{A|N|H}{04..64}[-PSHA{1|256|512}][-Snnn][-TG]
// with G one of 1..59S, 1..59M, 1..48H (errata 3729). Refused as bad_ocra_suite, as on the
// server: truncation 0, bare P/S/T defaults, parts out of order. Inputs that do not fit the
// suite are bad_ocra_input. H questions are whole bytes; session text is nnn ASCII characters.
import { concat, hex } from "../shared/bytes.js";
import { CodeError } from "../shared/errors.js";

const SUITE = new RegExp(
  "^OCRA-1:HOTP-(?<hash>SHA1|SHA256|SHA512)-(?<digits>[0-9]{1,2})" +
  ":(?<counter>C-)?Q(?<qkind>[ANH])(?<qlen>[0-9]{2})" +
  "(?:-PSHA(?<pin>1|256|512))?" +
  "(?:-S(?<session>[0-9]{3}))?" +
  "(?:-T(?<tnum>[0-9]{1,2})(?<tunit>[SMH]))?$");
const UNIT_SECONDS = Object.freeze({ S: 1, M: 60, H: 3600 });
// Errata 3729: a step of 0 hours is meaningless; seconds and minutes stop at 59.
const UNIT_MAX = Object.freeze({ S: 59, M: 59, H: 48 });
const WEBCRYPTO_HASH = Object.freeze({ SHA1: "SHA-1", SHA256: "SHA-256", SHA512: "SHA-512" });
const HASH_SIZES = Object.freeze({ SHA1: 20, SHA256: 32, SHA512: 64 });
const QUESTION = Object.freeze({
  N: /^[0-9]+$/,
  A: /^[0-9A-Za-z]+$/,
  H: /^(?:[0-9A-Fa-f]{2})+$/,
});
const QUESTION_FIELD_BYTES = 128;
const MAX_U64 = 2n ** 64n - 1n;
const encoder = new TextEncoder();

/**
 * @typedef {object} Suite a parsed OCRA suite
 * @property {string} description the suite text, which the HMAC input starts with
 * @property {number} digits
 * @property {"SHA1" | "SHA256" | "SHA512"} hashName
 * @property {boolean} usesCounter
 * @property {"A" | "N" | "H"} questionKind
 * @property {number} questionLength
 * @property {string | null} pinHash "SHA1", "SHA256" or "SHA512"
 * @property {number | null} sessionLength
 * @property {number | null} timeStep seconds
 */

/**
 * Throws CodeError `bad_ocra_suite` for anything outside the grammar above.
 * @param {string} text
 * @returns {Suite}
 */
export function parseSuite(text) {
  const match = typeof text === "string" ? SUITE.exec(text) : null;
  if (match === null) throw new CodeError("bad_ocra_suite", "malformed or unsupported OCRA suite");
  const parts = /** @type {Record<string, string | undefined>} */ (match.groups);
  const digits = Number(parts.digits);
  const questionLength = Number(parts.qlen);
  const sessionLength = parts.session === undefined ? null : Number(parts.session);
  let timeStep = null;
  if (parts.tnum !== undefined) {
    const amount = Number(parts.tnum);
    if (amount < 1 || amount > UNIT_MAX[parts.tunit]) {
      throw new CodeError("bad_ocra_suite", "OCRA time step out of range");
    }
    timeStep = amount * UNIT_SECONDS[parts.tunit];
  }
  if (digits < 4 || digits > 10 || parts.digits.startsWith("0") ||
      questionLength < 4 || questionLength > 64 ||
      (sessionLength !== null && (sessionLength < 1 || sessionLength > 512))) {
    throw new CodeError("bad_ocra_suite", "malformed or unsupported OCRA suite");
  }
  return Object.freeze({
    description: text,
    digits,
    hashName: parts.hash,
    usesCounter: parts.counter !== undefined,
    questionKind: parts.qkind,
    questionLength,
    pinHash: parts.pin === undefined ? null : `SHA${parts.pin}`,
    sessionLength,
    timeStep,
  });
}

/**
 * The token's secret as a non-extractable HMAC key with the suite's hash: the bytes need
 * not be kept. Throws CodeError `bad_ocra_suite`, or `bad_ocra_input` for an empty secret.
 * @param {Uint8Array} secret
 * @param {string | Suite} suite
 * @returns {Promise<CryptoKey>}
 */
export async function importOcraKey(secret, suite) {
  const { hashName } = suiteOf(suite);
  if (!(secret instanceof Uint8Array) || secret.length === 0) {
    throw new CodeError("bad_ocra_input", "OCRA key must be non-empty bytes");
  }
  const algorithm = { name: "HMAC", hash: WEBCRYPTO_HASH[hashName] };
  return crypto.subtle.importKey("raw", secret, algorithm, false, ["sign"]);
}

/**
 * The response to `question`. Each input the suite names is required, each other one
 * refused (CodeError `bad_ocra_input`): `counter` (C) and `timeStep` (T, Unix time already
 * divided by the step) as integers in 0..2^64-1 (a bigint above 2^53), `pin` or its
 * `pinDigest` (P), `session` (S). `mutual` is RFC 6287 §7.2's mode, where `question` is
 * two challenges concatenated.
 * @param {{suite: string | Suite, key: CryptoKey, question: string,
 *   counter?: number | bigint | null, timeStep?: number | bigint | null,
 *   pin?: string | null, pinDigest?: Uint8Array | null, session?: string | null,
 *   mutual?: boolean}} inputs
 * @returns {Promise<string>} the decimal response, `digits` long
 */
export async function respond({
  suite, key, question, counter = null, timeStep = null, pin = null, pinDigest = null,
  session = null, mutual = false,
}) {
  const parsed = suiteOf(suite);
  if (!(key instanceof CryptoKey) || key.algorithm.name !== "HMAC" ||
      key.algorithm.hash.name !== WEBCRYPTO_HASH[parsed.hashName]) {
    throw new CodeError("bad_ocra_input", "key is not an HMAC key with the suite's hash");
  }
  const parts = [encoder.encode(parsed.description), Uint8Array.of(0)];
  if (parsed.usesCounter) {
    parts.push(u64(counter, "counter"));
  } else if (counter !== null) {
    throw new CodeError("bad_ocra_input", "suite has no counter");
  }
  parts.push(questionField(parsed, question, mutual));
  if (parsed.pinHash === null) {
    if (pin !== null || pinDigest !== null) {
      throw new CodeError("bad_ocra_input", "suite takes no PIN");
    }
  } else {
    parts.push(await pinField(parsed.pinHash, pin, pinDigest));
  }
  if (parsed.sessionLength === null) {
    if (session !== null) throw new CodeError("bad_ocra_input", "suite takes no session");
  } else if (typeof session !== "string" || !/^[\x00-\x7f]*$/.test(session) ||
             session.length !== parsed.sessionLength) {
    throw new CodeError("bad_ocra_input", "session does not fit the suite");
  } else {
    parts.push(encoder.encode(session));
  }
  if (parsed.timeStep !== null) {
    parts.push(u64(timeStep, "time step"));
  } else if (timeStep !== null) {
    throw new CodeError("bad_ocra_input", "suite has no time step");
  }
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, concat(...parts)));
  return truncate(mac, parsed.digits);
}

/**
 * The hex question that carries a SHA-256 transaction digest in a QH64 suite. Throws
 * CodeError `bad_ocra_suite` for another suite, `bad_ocra_input` unless 32 bytes.
 * @param {Uint8Array} digest
 * @param {string | Suite} suite
 * @returns {string}
 */
export function questionForDigest(digest, suite) {
  const parsed = suiteOf(suite);
  if (parsed.questionKind !== "H" || parsed.questionLength !== 64) {
    throw new CodeError("bad_ocra_suite", "a digest question needs a QH64 suite");
  }
  if (!(digest instanceof Uint8Array) || digest.length !== 32) {
    throw new CodeError("bad_ocra_input", "transaction digest must be 32 bytes");
  }
  return hex(digest);
}

/**
 * Only a suite's description is read: a hand-made object cannot claim other fields.
 * @param {string | Suite} suite
 */
function suiteOf(suite) {
  return parseSuite(typeof suite === "string" ? suite : suite?.description);
}

/** The question as oath encodes it, zero-padded to 128 bytes. */
function questionField(suite, question, mutual) {
  const limit = suite.questionLength * (mutual ? 2 : 1);
  if (typeof question !== "string" || question.length > limit ||
      !QUESTION[suite.questionKind].test(question)) {
    throw new CodeError("bad_ocra_input", "question does not fit the suite");
  }
  let bytes;
  if (suite.questionKind === "A") {
    bytes = encoder.encode(question);
  } else if (suite.questionKind === "H") {
    bytes = fromHex(question);
  } else {
    // RFC 6287's reference code: the number in hex, a zero appended (not prepended) to an
    // odd number of digits.
    const digits = BigInt(question).toString(16);
    bytes = fromHex(digits.length % 2 === 1 ? `${digits}0` : digits);
  }
  const field = new Uint8Array(QUESTION_FIELD_BYTES);
  field.set(bytes);
  return field;
}

/** P: the hash of the PIN, or the digest given instead of it; exactly one of them. */
async function pinField(pinHash, pin, pinDigest) {
  if (typeof pin === "string" && pinDigest === null) {
    const digest = await crypto.subtle.digest(WEBCRYPTO_HASH[pinHash], encoder.encode(pin));
    return new Uint8Array(digest);
  }
  if (pin === null && pinDigest instanceof Uint8Array && pinDigest.length === HASH_SIZES[pinHash]) {
    return pinDigest;
  }
  throw new CodeError("bad_ocra_input", "suite needs exactly one of PIN or PIN digest");
}

/** C and T enter the HMAC input as 8-byte big-endian unsigned integers. */
function u64(value, what) {
  const valid = (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) ||
    (typeof value === "bigint" && value >= 0n && value <= MAX_U64);
  if (!valid) throw new CodeError("bad_ocra_input", `suite needs a ${what} in 0..2^64-1`);
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value));
  return bytes;
}

/** RFC 4226 dynamic truncation to `digits` decimal digits. */
function truncate(mac, digits) {
  const offset = mac[mac.length - 1] & 0x0f;
  const value = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) |
    (mac[offset + 2] << 8) | mac[offset + 3];
  return String(value % 10 ** digits).padStart(digits, "0");
}

/** @param {string} text even-length hex */
function fromHex(text) {
  return Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
}
