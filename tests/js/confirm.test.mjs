// Scheme C's codes on the phone against vectors made by the Python reference: confirmation
// codes read as qrgate.core.confirm.read_code, enrolment codes as read_enrol_code.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { readConfirmCode, readEnrolCode } from "../../src/qrgate/web/app/js/confirm/codes.js";
import { importJwks } from "../../src/qrgate/web/app/js/shared/codes.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../vectors/codes/${name}`, import.meta.url), "utf8"));
const CONFIRM = vectors("confirm.json");
const keys = await importJwks(vectors("keys.json").jwks);
const READERS = { confirm: readConfirmCode, enrol: readEnrolCode };

test("valid codes read to exactly what Python reads", async () => {
  for (const v of CONFIRM.valid) {
    assert.deepEqual(await READERS[v.reader](v.text, { keys, now: v.now }), v.expected, v.name);
  }
});

test("refused codes throw Python's error code", async () => {
  for (const v of CONFIRM.refused) {
    await assert.rejects(READERS[v.reader](v.text, { keys, now: v.now }),
      { name: "CodeError", code: v.error }, v.name);
  }
});
