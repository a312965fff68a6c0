// Scheme C on the phone: the confirmation code it scans (step 606) and the enrolment code
// that binds it, read as qrgate.core.confirm.read_code and
// qrgate.core.enrolment.read_enrol_code read them. Every claim is type-checked after the
// signature: a field of the wrong type is malformed_code, never shown.
import { CodeType, verifyCode } from "../shared/codes.js";
import { hex } from "../shared/bytes.js";
import { CodeError } from "../shared/errors.js";

const CHALLENGE_ID_BYTES = 16;
const VERIFICATION_CODE_BYTES = 8;

const ConfirmClaim = Object.freeze({
  CHALLENGE: 10,
  ORG: 11,
  BUSINESS: 12,
  LOGIN: 13,
  OPERATION: 14,
  AMOUNT: 15,
  NUMBER_MATCHING: 16,
  URL: 17,
});

const EnrolClaim = Object.freeze({ ENROLMENT: 10, SECRET: 11, ORG: 12, LOGIN: 13, SERVER: 14 });

/** @param {unknown} value */
const isText = (value) => typeof value === "string";
/** @param {unknown} value */
const isBool = (value) => typeof value === "boolean";
/** @param {number} size */
const isBytes = (size) => (/** @type {unknown} */ value) =>
  value instanceof Uint8Array && value.length === size;

/**
 * @typedef {object} ConfirmCode
 * @property {string} challengeId hex
 * @property {number} orgId
 * @property {string} businessId
 * @property {string} login
 * @property {string} operation
 * @property {string | null} amount
 * @property {boolean} numberMatching the browser shows a number the user must type
 * @property {string | null} url
 * @property {string} issuer
 * @property {number} issuedAt
 * @property {number} expiresAt
 */

/**
 * 606: verify a scanned confirmation code offline. Throws CodeError as verifyCode does, and
 * `malformed_code` for a claim that is missing or of the wrong type.
 * @param {string} text
 * @param {{keys: import("../shared/codes.js").KeySet, now: number}} options
 * @returns {Promise<ConfirmCode>}
 */
export async function readConfirmCode(text, { keys, now }) {
  const code = await verifyCode(text, { keys, now, expectedType: CodeType.CONFIRM });
  const { claims } = code;
  // The code's id is the verification code of its rotation; the server compares it.
  if (code.id.length !== VERIFICATION_CODE_BYTES) {
    throw new CodeError("malformed_code", "confirmation code id has the wrong length");
  }
  return {
    challengeId: hex(claim(claims, ConfirmClaim.CHALLENGE, isBytes(CHALLENGE_ID_BYTES))),
    orgId: claim(claims, ConfirmClaim.ORG, Number.isInteger),
    businessId: claim(claims, ConfirmClaim.BUSINESS, isText),
    login: claim(claims, ConfirmClaim.LOGIN, isText),
    operation: claim(claims, ConfirmClaim.OPERATION, isText),
    amount: optional(claims, ConfirmClaim.AMOUNT, isText),
    numberMatching: optional(claims, ConfirmClaim.NUMBER_MATCHING, isBool) ?? false,
    url: optional(claims, ConfirmClaim.URL, isText),
    issuer: code.issuer,
    issuedAt: code.issuedAt,
    expiresAt: code.expiresAt,
  };
}

/**
 * @typedef {object} EnrolCode
 * @property {string} enrolmentId
 * @property {string} secret
 * @property {number} orgId
 * @property {string} login
 * @property {string} serverUrl
 * @property {string} issuer
 * @property {number} expiresAt
 */

/**
 * Verify a device enrolment code offline. Throws CodeError as verifyCode does, and
 * `malformed_code` for a claim that is missing or of the wrong type.
 * @param {string} text
 * @param {{keys: import("../shared/codes.js").KeySet, now: number}} options
 * @returns {Promise<EnrolCode>}
 */
export async function readEnrolCode(text, { keys, now }) {
  const code = await verifyCode(text, { keys, now, expectedType: CodeType.ENROL });
  const { claims } = code;
  const enrolmentId = claims.get(EnrolClaim.ENROLMENT);
  const secret = claims.get(EnrolClaim.SECRET);
  const orgId = claims.get(EnrolClaim.ORG);
  const login = claims.get(EnrolClaim.LOGIN);
  const serverUrl = claims.get(EnrolClaim.SERVER);
  if (!(isText(enrolmentId) && isText(secret) && isText(login) && isText(serverUrl) &&
        Number.isInteger(orgId))) {
    throw new CodeError("malformed_code", "enrolment code claims are missing or ill-typed");
  }
  return {
    enrolmentId, secret, orgId, login, serverUrl, issuer: code.issuer, expiresAt: code.expiresAt,
  };
}

/**
 * @param {Map<number, unknown>} claims
 * @param {number} key
 * @param {(value: unknown) => boolean} valid
 * @returns {any}
 */
function claim(claims, key, valid) {
  const value = claims.get(key);
  if (!valid(value)) {
    throw new CodeError("malformed_code", `claim ${key} missing or of the wrong type`);
  }
  return value;
}

/** A claim that may be absent; present, it must be valid (a null is not absent). */
function optional(claims, key, valid) {
  return claims.has(key) ? claim(claims, key, valid) : null;
}
