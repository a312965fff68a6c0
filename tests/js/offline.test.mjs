// Offline approval codes on the phone against Python's (tests/vectors/codes/offline.json):
// the scanned code read offline, then the question and the code from its challenge id.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { readConfirmCode } from "../../src/qrgate/web/app/js/confirm/codes.js";
import {
  importOfflineKey, offlineCode, offlineQuestion,
} from "../../src/qrgate/web/app/js/confirm/offline-code.js";
import { importJwks } from "../../src/qrgate/web/app/js/shared/codes.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../vectors/codes/${name}`, import.meta.url), "utf8"));
const OFFLINE = vectors("offline.json");
const keys = await importJwks(vectors("keys.json").jwks);
const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));

test("codes computed from the scanned code are Python's", async () => {
  assert.ok(OFFLINE.cases.length >= 5);
  for (const v of OFFLINE.cases) {
    const code = await readConfirmCode(v.text, { keys, now: v.now });
    assert.equal(code.challengeId, v.challengeId, v.name);
    assert.equal(code.numberMatching, v.number !== null, v.name);
    assert.equal(await offlineQuestion(code.challengeId, v.number), v.question, v.name);
    const key = await importOfflineKey(fromHex(v.secret));
    assert.equal(key.extractable, false);
    assert.equal(await offlineCode({ key, challengeId: code.challengeId, number: v.number }),
      v.code, v.name);
  }
});

test("another number or another challenge gives another code", async () => {
  const [first, second] = OFFLINE.cases.filter((v) => v.number !== null);
  const key = await importOfflineKey(fromHex(first.secret));
  const right = await offlineCode({ key, challengeId: first.challengeId, number: first.number });
  const wrongNumber = first.number === 99 ? 98 : first.number + 1;
  assert.notEqual(await offlineCode({ key, challengeId: first.challengeId,
    number: wrongNumber }), right);
  assert.notEqual(await offlineCode({ key, challengeId: second.challengeId,
    number: first.number }), right);
});

test("numbers and ids are refused as in Python", async () => {
  for (const v of OFFLINE.refused) {
    await assert.rejects(offlineQuestion("00".repeat(16), v.number),
      { name: "CodeError", code: v.error }, JSON.stringify(v.number));
  }
  for (const id of ["00".repeat(15), "AA".repeat(16), null, 7]) {
    await assert.rejects(offlineQuestion(id, null), { code: "bad_ocra_input" });
  }
});
