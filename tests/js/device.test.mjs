// Device request signatures against qrgate.core.device_auth: the signing input byte for
// byte, a signature Python made verifies with WebCrypto, and the app's own signatures are
// low-S. (tests/web/test_js_units.py checks that Python accepts the app's signatures.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { b64u, fromB64u, hex } from "../../src/qrgate/web/app/js/shared/bytes.js";
import {
  generateDeviceKey, publicKeyB64u, requestTarget, signingInput, signRequest,
} from "../../src/qrgate/web/app/js/shared/device.js";

const DEVICE = JSON.parse(readFileSync(
  new URL("../vectors/codes/device.json", import.meta.url), "utf8"));
const ES256 = { name: "ECDSA", hash: "SHA-256" };
const P256 = { name: "ECDSA", namedCurve: "P-256" };
const HALF_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n / 2n;
const { kty, crv, x, y } = DEVICE.privateJwk;
const privateKey = await crypto.subtle.importKey("jwk", DEVICE.privateJwk, P256, false, ["sign"]);
const publicKey = await crypto.subtle.importKey("jwk", { kty, crv, x, y }, P256, true, ["verify"]);
const requestOf = (v) => ({
  method: v.method, target: requestTarget(v.path, v.query), timestamp: v.timestamp,
  deviceId: v.deviceId, body: Uint8Array.from(Buffer.from(v.body, "hex")),
});

test("the public key is sent as Python's enrolment sends it", async () => {
  assert.equal(await publicKeyB64u(publicKey), DEVICE.publicKeyB64u);
});

test("request targets and signing inputs are Python's, byte for byte", async () => {
  for (const v of DEVICE.requests) {
    assert.equal(requestTarget(v.path, v.query), v.target);
    assert.equal(hex(await signingInput(requestOf(v))), v.signingInput);
  }
});

test("a signature made in Python verifies with WebCrypto", async () => {
  for (const v of DEVICE.requests) {
    const input = await signingInput(requestOf(v));
    assert.ok(await crypto.subtle.verify(ES256, publicKey, fromB64u(v.signature), input));
  }
});

test("the app's signatures verify and are low-S", async () => {
  const [request] = DEVICE.requests;
  const input = await signingInput(requestOf(request));
  // ECDSA's nonce is random: 32 signatures make it near certain (1 - 2^-32) that some s
  // came out high and had to be normalised.
  for (let i = 0; i < 32; i += 1) {
    const signature = await signRequest({ privateKey, ...requestOf(request) });
    assert.match(signature, /^[A-Za-z0-9_-]{86}$/);
    const raw = fromB64u(signature);
    assert.ok(BigInt(`0x${hex(raw.subarray(32))}`) <= HALF_ORDER);
    assert.ok(await crypto.subtle.verify(ES256, publicKey, raw, input));
  }
});

test("a generated device key cannot be exported", async () => {
  const pair = await generateDeviceKey();
  assert.equal(pair.privateKey.extractable, false);
  assert.deepEqual(pair.privateKey.usages, ["sign"]);
  await assert.rejects(crypto.subtle.exportKey("pkcs8", pair.privateKey));
  await assert.rejects(crypto.subtle.exportKey("jwk", pair.privateKey));
  assert.match(await publicKeyB64u(pair.publicKey), /^B[A-Za-z0-9_-]{86}$/);
});

test("base64url helpers read as the server does", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(fromB64u(b64u(bytes)), bytes);
  assert.equal(b64u(Uint8Array.of(0xfb, 0xff)), "-_8");
  assert.deepEqual(fromB64u("AB"), Uint8Array.of(0)); // unused bits ignored, as in Python
  for (const bad of ["A", "AB==", "+/8", "AB C", 5]) {
    assert.throws(() => fromB64u(bad), { name: "CodeError", code: "malformed" }, String(bad));
  }
});
