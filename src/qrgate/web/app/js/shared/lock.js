// The app lock, the protocol side (qrgate.core.app_lock and qrgate.accounts.app_lock on the
// server). The app proves with each approval that its user unlocked it, by a proof over
// that very decision:
//   message = SHA-256("QGUNLOCK1\n" + challenge id + "\n" + decision + "\n" + number or "-")
// - PIN: k = PBKDF2-SHA256(PIN, "qrgate-pin:" + device id, 310,000 iterations), registered
//   once with the server; the proof is HMAC-SHA256(k, message). k is derived again from the
//   typed PIN each time and never kept: a key kept on the phone would let a script (or a
//   thief with the browser's profile) make proofs without the PIN, and a PIN verifier kept
//   here would let a 6-digit PIN be guessed offline. The server counts wrong PINs.
// - Platform authenticator: a WebAuthn assertion with user verification (fingerprint,
//   face) whose challenge is the message.
// Changing or removing the lock is unlocked the same way, over
//   SHA-256("QGLOCKSET1\n" + device id + "\n" + change + "\n" + sha256hex(new material)).
// What this phone keeps (localStorage): for each account (device id), whether a PIN is set
// and the id of its platform credential. Nothing in it unlocks anything.
import { signedCall } from "./api.js";
import { b64u, fromB64u, hex } from "./bytes.js";
import { CodeError } from "./errors.js";

export const PIN_ITERATIONS = 310_000;
const STORAGE_KEY = "qrgate-lock";
const encoder = new TextEncoder();

/** @typedef {{pin: boolean, credentialId: string | null}} AccountLock */

/** @returns {Record<string, AccountLock>} */
function stored() {
  try {
    const value = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

/** The lock of the account with `deviceId` as this phone knows it. */
export function accountLock(deviceId) {
  return stored()[deviceId] || { pin: false, credentialId: null };
}

/** Remember (or forget, with null) an account's lock. */
export function rememberLock(deviceId, lock) {
  const all = stored();
  if (lock && (lock.pin || lock.credentialId)) all[deviceId] = lock;
  else delete all[deviceId];
  localStorage.setItem(STORAGE_KEY, JSON.stringify(all));
}

/** Whether WebAuthn with a platform authenticator can be asked for at all here. */
export async function platformAuthenticatorAvailable() {
  if (!window.PublicKeyCredential || !PublicKeyCredential
    .isUserVerifyingPlatformAuthenticatorAvailable) return false;
  return PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable();
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** @param {string} challengeId @param {"approve" | "deny"} decision @param {number | null} number */
export function decisionMessage(challengeId, decision, number) {
  const shown = number === null || number === undefined ? "-" : String(number);
  return sha256(encoder.encode(["QGUNLOCK1", challengeId, decision, shown].join("\n")));
}

/** @param {string} deviceId @param {"set_pin" | "add_webauthn" | "turn_off"} change
 * @param {Uint8Array} material */
export async function changeMessage(deviceId, change, material = new Uint8Array()) {
  const digest = hex(await sha256(material));
  return sha256(encoder.encode(["QGLOCKSET1", deviceId, change, digest].join("\n")));
}

/** The 32-byte key the PIN stands for on this account's device. */
export async function pinKey(pin, deviceId) {
  const base = await crypto.subtle.importKey("raw", encoder.encode(pin), "PBKDF2", false,
    ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256",
    salt: encoder.encode(`qrgate-pin:${deviceId}`), iterations: PIN_ITERATIONS }, base, 256);
  return new Uint8Array(bits);
}

/** The `unlock` of a request, by PIN. */
export async function pinUnlock(pin, deviceId, message) {
  const key = await crypto.subtle.importKey("raw", await pinKey(pin, deviceId),
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const proof = new Uint8Array(await crypto.subtle.sign("HMAC", key, message));
  return { method: "pin", proof: b64u(proof) };
}

function webauthnError(error) {
  if (error instanceof CodeError) return error;
  // NotAllowedError: the user dismissed the prompt, or it timed out.
  if (error && error.name === "NotAllowedError") return new CodeError("unlock_cancelled");
  return new CodeError("webauthn_unavailable");
}

/** The `unlock` of a request, by the platform authenticator (user verification). */
export async function webauthnUnlock(credentialId, message, signal = undefined) {
  let credential;
  try {
    credential = await navigator.credentials.get({ signal, publicKey: {
      challenge: message, rpId: location.hostname, userVerification: "required",
      timeout: 60_000, allowCredentials: [{ type: "public-key", id: fromB64u(credentialId) }],
    } });
  } catch (error) {
    throw webauthnError(error);
  }
  if (!credential) throw new CodeError("unlock_cancelled");
  const response = credential.response;
  const unlock = {
    method: "webauthn",
    credential_id: b64u(new Uint8Array(credential.rawId)),
    authenticator_data: b64u(new Uint8Array(response.authenticatorData)),
    client_data_json: b64u(new Uint8Array(response.clientDataJSON)),
    signature: b64u(new Uint8Array(response.signature)),
  };
  if (response.userHandle) unlock.user_handle = b64u(new Uint8Array(response.userHandle));
  return unlock;
}

/** Set the PIN of an account (`unlock`: the proof over the change, once a lock exists). */
export async function setPin(account, pin, unlockWith = null) {
  const key = await pinKey(pin, account.deviceId);
  const body = { key: b64u(key) };
  if (unlockWith) {
    body.unlock = await unlockWith(await changeMessage(account.deviceId, "set_pin", key));
  }
  await signedCall(account, "PUT", "/v1/devices/me/lock/pin", body);
  rememberLock(account.deviceId, { ...accountLock(account.deviceId), pin: true });
}

/** Register this phone's platform authenticator for an account, unlocked by its PIN. */
export async function addWebauthn(account, pin) {
  const options = await signedCall(account, "POST", "/v1/devices/me/lock/webauthn/options");
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey: {
      ...options,
      challenge: fromB64u(options.challenge),
      user: { ...options.user, id: fromB64u(options.user.id) },
      excludeCredentials: (options.excludeCredentials || []).map((item) => ({
        ...item, id: fromB64u(item.id) })),
    } });
  } catch (error) {
    throw webauthnError(error);
  }
  if (!credential) throw new CodeError("unlock_cancelled");
  const rawId = new Uint8Array(credential.rawId);
  const response = credential.response;
  const unlock = await pinUnlock(pin, account.deviceId,
    await changeMessage(account.deviceId, "add_webauthn", rawId));
  await signedCall(account, "POST", "/v1/devices/me/lock/webauthn", {
    credential: {
      id: b64u(rawId), rawId: b64u(rawId), type: "public-key",
      authenticatorAttachment: "platform",
      response: {
        clientDataJSON: b64u(new Uint8Array(response.clientDataJSON)),
        attestationObject: b64u(new Uint8Array(response.attestationObject)),
      },
    },
    unlock,
  });
  rememberLock(account.deviceId, { ...accountLock(account.deviceId), credentialId: b64u(rawId) });
}

/** Turn an account's lock off, unlocked by its PIN. */
export async function turnOff(account, pin) {
  const unlock = await pinUnlock(pin, account.deviceId,
    await changeMessage(account.deviceId, "turn_off"));
  await signedCall(account, "POST", "/v1/devices/me/lock/off", { unlock });
  rememberLock(account.deviceId, null);
}
