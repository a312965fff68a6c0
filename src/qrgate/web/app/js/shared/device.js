// The phone's device key and its request signatures, as qrgate.core.device_auth checks
// them: headers Qrgate-Device, Qrgate-Timestamp and Qrgate-Signature, the signature being
// base64url (no padding) of the raw r||s ES256 signature, low S, over
// "QGDEV1\nMETHOD\nTARGET\nTIMESTAMP\nDEVICE_ID\nsha256hex(body)".
import { b64u, hex } from "./bytes.js";

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" };
const ES256 = { name: "ECDSA", hash: "SHA-256" };
// The order n of the P-256 group.
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const COORD_LEN = 32;
const encoder = new TextEncoder();

/**
 * A fresh device key. The private half cannot be exported: it never leaves this browser's
 * key store, which is what binding the phone means.
 * @returns {Promise<CryptoKeyPair>}
 */
export function generateDeviceKey() {
  return crypto.subtle.generateKey(ECDSA_P256, false, ["sign"]);
}

/**
 * The public key as enrolment sends it: the uncompressed point (0x04 || x || y), base64url.
 * @param {CryptoKey} publicKey
 * @returns {Promise<string>}
 */
export async function publicKeyB64u(publicKey) {
  return b64u(new Uint8Array(await crypto.subtle.exportKey("raw", publicKey)));
}

/**
 * What the signature covers of the URL: the path, and the raw query string if any.
 * @param {string} path
 * @param {string} query
 * @returns {string}
 */
export function requestTarget(path, query) {
  return query ? `${path}?${query}` : path;
}

/**
 * The bytes a device signs. Async: the body's SHA-256 comes from WebCrypto.
 * @param {{method: string, target: string, timestamp: number, deviceId: string,
 *   body: Uint8Array}} request `target` as made by requestTarget
 * @returns {Promise<Uint8Array>}
 */
export async function signingInput({ method, target, timestamp, deviceId, body }) {
  const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", body)));
  const lines = ["QGDEV1", method.toUpperCase(), target, String(timestamp), deviceId, digest];
  return encoder.encode(lines.join("\n"));
}

/**
 * The Qrgate-Signature header value. WebCrypto does not normalise S; the server accepts
 * only s <= n/2 (so a signature cannot be varied without the key), so a high s becomes n - s.
 * @param {{privateKey: CryptoKey, method: string, target: string, timestamp: number,
 *   deviceId: string, body: Uint8Array}} request
 * @returns {Promise<string>}
 */
export async function signRequest({ privateKey, method, target, timestamp, deviceId, body }) {
  const input = await signingInput({ method, target, timestamp, deviceId, body });
  const raw = new Uint8Array(await crypto.subtle.sign(ES256, privateKey, input));
  const s = BigInt(`0x${hex(raw.subarray(COORD_LEN))}`);
  if (s > P256_ORDER / 2n) {
    let low = P256_ORDER - s;
    for (let i = raw.length - 1; i >= COORD_LEN; i -= 1) {
      raw[i] = Number(low & 0xffn);
      low >>= 8n;
    }
  }
  return b64u(raw);
}
