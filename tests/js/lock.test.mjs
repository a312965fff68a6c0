// The app lock on the phone against Python's (tests/vectors/codes/app_lock.json): the
// unlock message of a decision, the key a PIN derives and its proof, the message of each
// change of the lock.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { hex } from "../../src/qrgate/web/app/js/shared/bytes.js";
import {
  changeMessage, decisionMessage, pinKey, pinUnlock,
} from "../../src/qrgate/web/app/js/shared/lock.js";

const LOCK = JSON.parse(readFileSync(new URL("../vectors/codes/app_lock.json", import.meta.url),
  "utf8"));
const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));

test("decision messages, PIN keys and proofs are Python's", async () => {
  assert.ok(LOCK.decisions.length >= 3);
  for (const v of LOCK.decisions) {
    const message = await decisionMessage(v.challengeId, v.decision, v.number);
    assert.equal(hex(message), v.message);
    assert.equal(hex(await pinKey(v.pin, v.deviceId)), v.key);
    assert.deepEqual(await pinUnlock(v.pin, v.deviceId, message),
      { method: "pin", proof: v.proof });
  }
});

test("change messages are Python's", async () => {
  assert.equal(LOCK.changes.length, 3);
  for (const v of LOCK.changes) {
    assert.equal(hex(await changeMessage(v.deviceId, v.change, fromHex(v.material))), v.message);
  }
});

test("another number, decision or PIN makes another proof", async () => {
  const [v] = LOCK.decisions;
  const message = await decisionMessage(v.challengeId, v.decision, v.number);
  assert.notEqual(hex(await decisionMessage(v.challengeId, v.decision, 0)), v.message);
  assert.notEqual(hex(await decisionMessage(v.challengeId, "deny", v.number)), v.message);
  assert.notEqual((await pinUnlock("246811", v.deviceId, message)).proof, v.proof);
});
