// The one error type of the app's protocol core. Its `code` is the stable string the Python
// side raises for the same refusal (qrgate.errors), so a screen can branch on it and show
// the same message whether the phone or the server refused.

/**
 * @typedef {"malformed" | "malformed_code" | "unsupported_version" | "payload_too_large"
 *   | "invalid_field" | "bad_jwks" | "bad_signature" | "unknown_key" | "wrong_code_type"
 *   | "expired" | "not_yet_valid" | "bad_chain" | "broken_chain" | "text_mismatch"
 *   | "bad_ocra_suite" | "bad_ocra_input"} ErrorCode
 */

export class CodeError extends Error {
  /**
   * @param {ErrorCode} code
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message || code);
    this.name = "CodeError";
    /** @type {ErrorCode} */
    this.code = code;
  }
}
