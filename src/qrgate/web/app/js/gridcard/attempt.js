// Scheme A over the wire: start an attempt (in the app alone, or by joining a relying
// party's), answer it with the asked cell, ask for another position. The attempt's answer
// token stands in for a device signature: the app holds it in memory, for this attempt
// only, and never in the URL or in storage.
import { publicCall } from "../shared/api.js";

/**
 * @typedef {object} Attempt the API's attempt (AttemptOut) and the token to answer it
 * @property {string} attempt_id
 * @property {string} answer_token
 * @property {string} login
 * @property {string} organisation
 * @property {string | null} application
 * @property {string} serial the card to use, as printed
 * @property {string} position e.g. "C4"
 * @property {number} position_expires_at Unix seconds
 * @property {number} reissues_left
 */

/** @returns {Promise<Attempt>} */
export function signIn({ organisation, login, password }) {
  return publicCall("POST", "/v1/gridcard/sign-in", { organisation, login, password });
}

/** Join the attempt of a relying party's signed code; the answer names its service too.
 * @returns {Promise<Attempt & {service: object, requester: object}>} */
export function joinAttempt(code) {
  return publicCall("POST", "/v1/gridcard/scan", { code });
}

function attemptCall(attempt, action, body) {
  return publicCall("POST",
    `/v1/gridcard/attempts/${encodeURIComponent(attempt.attempt_id)}/${action}`, body,
    { "qrgate-attempt-token": attempt.answer_token });
}

/** Send the scanned cell's text; resolves to the authenticated attempt. */
export function answer(attempt, cell) {
  return attemptCall(attempt, "answer", { cell });
}

/** Another position, once the current one's time has passed.
 * @param {Attempt} attempt @returns {Promise<Attempt>} */
export async function reissue(attempt) {
  // The reply is the attempt without its token: keep the one this app holds.
  return { ...attempt, ...(await attemptCall(attempt, "reissue", {})) };
}
