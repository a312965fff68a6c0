// Scheme C's offline approval code, computed as qrgate.core.offline computes it: the OCRA
// (RFC 6287) response of suite OCRA-1:HOTP-SHA256-8:QH64, under the offline secret the
// enrolment handed over once (kept as a non-extractable HMAC key), to the question
//
//   SHA-256("qrgate offline approval v1" || 0x00 || challenge id (16 bytes)
//           || number (1 byte: 10..99, or 0 without number matching))
//
// in lowercase hex. The code is right only for this challenge and, when the browser shows a
// number, only with that number.
import { concat } from "../shared/bytes.js";
import { CodeError } from "../shared/errors.js";
import { importOcraKey, questionForDigest, respond } from "../txsign/ocra.js";

export const OFFLINE_SUITE = "OCRA-1:HOTP-SHA256-8:QH64";
const LABEL = new TextEncoder().encode("qrgate offline approval v1");
const CHALLENGE_ID_HEX = /^[0-9a-f]{32}$/;
const NO_NUMBER = 0;

/**
 * The offline secret as a non-extractable HMAC-SHA256 key: its bytes need not be kept.
 * @param {Uint8Array} secret the 32 bytes of the enrolment answer's `offline_secret`
 * @returns {Promise<CryptoKey>}
 */
export function importOfflineKey(secret) {
  return importOcraKey(secret, OFFLINE_SUITE);
}

/**
 * The QH64 question of a challenge. Throws CodeError `bad_ocra_input` for an id that is not
 * 16 bytes of lowercase hex, or a number other than null or an integer 10..99.
 * @param {string} challengeId hex, as readConfirmCode returns it
 * @param {number | null} number
 * @returns {Promise<string>}
 */
export async function offlineQuestion(challengeId, number) {
  if (typeof challengeId !== "string" || !CHALLENGE_ID_HEX.test(challengeId)) {
    throw new CodeError("bad_ocra_input", "challenge id must be 16 bytes of hex");
  }
  if (number !== null && !(Number.isInteger(number) && number >= 10 && number <= 99)) {
    throw new CodeError("bad_ocra_input", "number must be 10..99 or null");
  }
  const id = Uint8Array.from(challengeId.match(/../g), (pair) => parseInt(pair, 16));
  const input = concat(LABEL, Uint8Array.of(0), id, Uint8Array.of(number ?? NO_NUMBER));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return questionForDigest(digest, OFFLINE_SUITE);
}

/**
 * The 8-digit code that approves `challengeId` when typed into the waiting page.
 * @param {{key: CryptoKey, challengeId: string, number: number | null}} inputs
 * @returns {Promise<string>}
 */
export async function offlineCode({ key, challengeId, number }) {
  const question = await offlineQuestion(challengeId, number);
  return respond({ suite: OFFLINE_SUITE, key, question });
}
