// Base45 against RFC 9285's own examples (section 4.3) and its invalid inputs.
import assert from "node:assert/strict";
import { test } from "node:test";

import { decode, encode } from "../../src/qrgate/web/app/js/shared/base45.js";

const text = new TextEncoder();
const RFC_9285 = [["AB", "BB8"], ["Hello!!", "%69 VD92EX0"], ["base-45", "UJCLQE7W581"],
  ["ietf!", "QED8WEX0"], ["", ""]];

test("RFC 9285 examples encode and decode", () => {
  for (const [plain, encoded] of RFC_9285) {
    assert.equal(encode(text.encode(plain)), encoded);
    assert.deepEqual(decode(encoded), text.encode(plain));
  }
});

test("every byte value and length round-trips", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
  for (let length = 0; length <= bytes.length; length += 1) {
    const part = bytes.subarray(0, length);
    assert.deepEqual(decode(encode(part)), Uint8Array.from(part));
  }
});

test("invalid Base45 is malformed_code", () => {
  // GGW is RFC 9285's example of a triplet above 65535; "::" a pair above 255.
  for (const bad of ["GGW", "::", "ZZZZ", "A", "bb8", "BB8\n", "BB#", "BB8€", "Ⅻ"]) {
    assert.throws(() => decode(bad), { name: "CodeError", code: "malformed_code" }, bad);
  }
});
