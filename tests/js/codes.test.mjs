// The QG1 wire format and the JWKS on the phone, against vectors made by the Python
// reference (tests/support/js_vectors.py): every valid code verifies to exactly what
// Python's decode_code returns, every refused code throws exactly Python's error code.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { decodeStrict, encodeCanonical } from "../../src/qrgate/web/app/js/shared/cbor.js";
import {
  CodeType, importJwks, peekCodeType, verifyCode,
} from "../../src/qrgate/web/app/js/shared/codes.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../vectors/codes/${name}`, import.meta.url), "utf8"));
const KEYS = vectors("keys.json");
const CODES = vectors("codes.json");
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const keys = await importJwks(KEYS.jwks);

/** A decoded value in the vectors' JSON form: {bytes: hex}, {map: [[key, value]...]}. */
function tagged(value) {
  if (value instanceof Uint8Array) return { bytes: hex(value) };
  if (value instanceof Map) return { map: [...value].map(([k, v]) => [tagged(k), tagged(v)]) };
  if (Array.isArray(value)) return value.map(tagged);
  return value;
}

function verified(code) {
  return { ...code, id: hex(code.id), kid: hex(code.kid), claims: tagged(code.claims) };
}

test("the JWKS imports every published key, as non-extractable verify keys", async () => {
  assert.equal(keys.size, KEYS.kids.length);
  for (const kid of KEYS.kids) {
    const key = keys.get(Buffer.from(kid, "hex"));
    assert.equal(key.extractable, false);
    assert.deepEqual(key.usages, ["verify"]);
    assert.deepEqual(key.algorithm, { name: "ECDSA", namedCurve: "P-256" });
  }
  assert.equal(keys.get(new Uint8Array(8)), undefined);
});

test("JWKS entries of other kinds are skipped", async () => {
  for (const { name, jwks, size } of KEYS.accepted) {
    assert.equal((await importJwks(jwks)).size, size, name);
  }
});

test("malformed JWKS are refused as bad_jwks", async () => {
  for (const { name, jwks, error } of KEYS.refused) {
    await assert.rejects(importJwks(jwks), { name: "CodeError", code: error }, name);
  }
  await assert.rejects(importJwks(null), { code: "bad_jwks" });
});

test("valid codes verify to what Python decodes", async () => {
  for (const v of CODES.valid) {
    const code = await verifyCode(v.text, { keys, now: v.now, expectedType: v.expectedType });
    assert.deepEqual(verified(code), v.code, v.name);
    assert.equal(peekCodeType(v.text), v.code.type, v.name);
  }
});

test("refused codes throw Python's error code", async () => {
  for (const v of CODES.refused) {
    await assert.rejects(verifyCode(v.text, { keys, now: v.now, expectedType: v.expectedType }),
      { name: "CodeError", code: v.error }, v.name);
    if (v.envelopeError !== null) {
      assert.throws(() => peekCodeType(v.text), { code: v.envelopeError }, v.name);
    }
  }
});

test("codes Python accepts but the phone refuses on purpose", async () => {
  for (const v of CODES.stricter_in_js) {
    await assert.rejects(verifyCode(v.text, { keys, now: v.now, expectedType: v.expectedType }),
      { name: "CodeError", code: v.error }, v.name);
  }
});

test("leeway is an option", async () => {
  const [plain] = CODES.valid;
  const late = { keys, now: plain.code.expiresAt + 10, expectedType: CodeType.CONFIRM };
  await assert.rejects(verifyCode(plain.text, late), { code: "expired" });
  assert.equal((await verifyCode(plain.text, { ...late, leeway: 10 })).type, CodeType.CONFIRM);
});

test("peekCodeType refuses what is not text", () => {
  assert.throws(() => peekCodeType(undefined), { code: "malformed_code" });
});

test("CodeType is frozen and matches qrgate.core.codes", () => {
  assert.deepEqual(CodeType,
    { CONFIRM: 1, ENROL: 2, TXSIGN_CHALLENGE: 3, TXSIGN_CHAIN: 4, TOKEN_ENROL: 5, GRIDCARD: 6 });
  assert.ok(Object.isFrozen(CodeType));
});

test("decodeStrict keeps integer map keys and refuses what cbor2 refuses", () => {
  const map = decodeStrict(Uint8Array.of(0xa2, 0x01, 0x26, 0x20, 0x40));
  assert.deepEqual([...map], [[1, -7], [-1, new Uint8Array(0)]]);
  const refused = [
    [0xa2, 0x01, 0x01, 0x01, 0x02], // duplicate key
    [0x9f, 0xff], // indefinite length
    [0x18, 0x01], // non-minimal integer
    [0xf7], // undefined
    [0xf9, 0x3c, 0x00], // a float
    [0x1b, 0, 0x20, 0, 0, 0, 0, 0, 0], // 2^53: beyond the safe integers
    [0xc1, 0x00], // a tag other than 18
    [0x62, 0xc3, 0x28], // invalid UTF-8
    [0x01, 0x01], // trailing bytes
    [], // nothing
  ];
  for (const bytes of refused) {
    assert.throws(() => decodeStrict(Uint8Array.from(bytes)), { code: "malformed_code" },
      hex(bytes));
  }
});

test("decodeStrict allows cbor2's nesting depth and no more", () => {
  const nested = (depth, inner) => Uint8Array.from([...Array(depth).fill(0x81), inner]);
  assert.doesNotThrow(() => decodeStrict(nested(16, 0x01)));
  assert.doesNotThrow(() => decodeStrict(nested(16, 0x80)));
  assert.throws(() => decodeStrict(nested(17, 0x01)), { code: "malformed_code" });
  assert.throws(() => decodeStrict(nested(17, 0x80)), { code: "malformed_code" });
});

test("encodeCanonical refuses text that has no UTF-8 form", () => {
  assert.equal(hex(encodeCanonical(["é", null, 24, new Uint8Array(1)])), "8462c3a9f618184100");
  assert.throws(() => encodeCanonical(["\ud800"]), { code: "invalid_field" });
});
