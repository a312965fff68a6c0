// The qrgate API as the phone calls it. Device requests are signed with the device key
// exactly as the Python phone simulator signs them (qrgate.core.device_auth); refusals come
// back as problem documents whose stable `code` the screens turn into a message.
import { requestTarget, signRequest } from "./device.js";

/** The server root: the app lives at <root>/app/, so this also holds behind a path prefix. */
export const API_ROOT = new URL("../../../", import.meta.url);

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} detail */
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
  }
}

/** Whether `serverUrl` (from a scanned code) is the server this app belongs to. The app
 * talks to its own origin only (its CSP allows no other), so a code from another qrgate
 * server is refused with a message naming that server instead of failing on the wire. */
export function isThisServer(serverUrl) {
  try {
    return new URL(serverUrl).origin === API_ROOT.origin;
  } catch {
    return false;
  }
}

async function send(method, path, { body = null, params = null, headers = {} } = {}) {
  const url = new URL(path.replace(/^\//, ""), API_ROOT);
  if (params) for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  // No cookie rides on a call (requests are signed), except the answers to an enrolment and
  // a token's activation: their cookies list this browser's devices and tokens and outlive
  // storage eviction (shared/evicted.js).
  const remembered = path === "/v1/devices"
    || /^\/v1\/txsign\/tokens\/[0-9a-f]+\/activate$/.test(path);
  const credentials = method === "POST" && remembered ? "same-origin" : "omit";
  let response;
  try {
    response = await fetch(url, {
      method, body, headers, cache: "no-store", credentials, redirect: "error",
    });
  } catch {
    throw new ApiError(0, "network", "");
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.code) || `http_${response.status}`,
      (data && data.detail) || "");
  }
  return data;
}

function encodeBody(body) {
  return body === null ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body));
}

/** An unsigned call (server keys, token activation); `headers` carry what stands in for a
 * signature, e.g. a grid-card attempt's token. */
export function publicCall(method, path, body = null, headers = {}) {
  const all = body === null ? { ...headers } : { ...headers, "content-type": "application/json" };
  return send(method, path, { body: body === null ? null : JSON.stringify(body), headers: all });
}

/** A call signed by an account's device key (`deviceId` is "new" while enrolling). */
export async function signedCall({ deviceId, keys: { privateKey } }, method, path, body = null,
  params = null) {
  const raw = encodeBody(body);
  const query = params ? new URLSearchParams(params).toString() : "";
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = await signRequest({
    privateKey, method, target: requestTarget(path, query), timestamp, deviceId, body: raw,
  });
  const headers = {
    "qrgate-device": deviceId,
    "qrgate-timestamp": String(timestamp),
    "qrgate-signature": signature,
  };
  if (body !== null) headers["content-type"] = "application/json";
  return send(method, path, { body: body === null ? null : raw, params, headers });
}
