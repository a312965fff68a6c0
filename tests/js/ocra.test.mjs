// OCRA on the phone: every RFC 6287 Appendix C vector (tests/vectors/rfc6287_ocra.json), and
// what qrgate.core.ocra answers and refuses (tests/vectors/codes/ocra.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  importOcraKey, parseSuite, questionForDigest, respond,
} from "../../src/qrgate/web/app/js/txsign/ocra.js";

const load = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const RFC_6287 = load("../vectors/rfc6287_ocra.json");
const OCRA = load("../vectors/codes/ocra.json");
const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));
const big = (text) => (text === undefined ? null : BigInt(text));

test("every RFC 6287 suite parses", () => {
  for (const { suite } of RFC_6287.vectors) assert.equal(parseSuite(suite).description, suite);
});

test("RFC 6287 Appendix C, with the PIN and with its digest", async () => {
  assert.equal(RFC_6287.vectors.length, 70);
  for (const v of RFC_6287.vectors) {
    const key = await importOcraKey(fromHex(v.key), v.suite);
    const inputs = {
      suite: v.suite, key, question: v.question, counter: v.counter ?? null,
      timeStep: v.timestamp === undefined ? null : parseInt(v.timestamp, 16),
      mutual: v.mode === "mutual",
    };
    const name = `${v.section} ${v.suite} ${v.question}`;
    assert.equal(await respond({ ...inputs, pin: v.pin ?? null }), v.response, name);
    if (v.pin !== undefined) {
      assert.equal(await respond({ ...inputs, pinDigest: fromHex(v.pin_sha1) }), v.response, name);
    }
  }
});

test("suites parse and are refused as in Python", () => {
  for (const { text, parsed, error } of OCRA.suites) {
    if (error === null) {
      assert.deepEqual({ ...parseSuite(text) }, parsed, text);
    } else {
      assert.throws(() => parseSuite(text), { name: "CodeError", code: error },
        JSON.stringify(text));
    }
  }
  for (const notText of [null, undefined, 6, {}]) {
    assert.throws(() => parseSuite(notText), { code: "bad_ocra_suite" });
  }
});

test("digest questions are answered as in Python", async () => {
  for (const v of OCRA.digestAnswers) {
    const question = questionForDigest(fromHex(v.digest), v.suite);
    assert.equal(question, v.question);
    assert.equal(questionForDigest(fromHex(v.digest), parseSuite(v.suite)), v.question);
    const key = await importOcraKey(fromHex(v.key), v.suite);
    const response = await respond({ suite: v.suite, key, question,
      counter: big(v.counter), timeStep: big(v.timeStep) });
    assert.equal(response, v.response, v.name);
  }
});

test("digest questions are refused as in Python", () => {
  for (const { suite, digest, error } of OCRA.questionRefusals) {
    assert.throws(() => questionForDigest(fromHex(digest), suite), { code: error }, suite);
  }
});

test("answers and refusals of respond are Python's", async () => {
  for (const v of OCRA.responds) {
    const key = await importOcraKey(fromHex(v.key), v.suite);
    const answer = respond({
      suite: v.suite, key, question: v.question, counter: big(v.counter),
      timeStep: big(v.timeStep), pin: v.pin ?? null,
      pinDigest: v.pinDigest === undefined ? null : fromHex(v.pinDigest),
      session: v.session ?? null, mutual: v.mutual ?? false,
    });
    if (v.error === null) {
      assert.equal(await answer, v.response, v.name);
    } else {
      await assert.rejects(answer, { name: "CodeError", code: v.error }, v.name);
    }
  }
});

test("counters are numbers up to 2^53, bigints beyond", async () => {
  const suite = "OCRA-1:HOTP-SHA256-8:C-QH64";
  const key = await importOcraKey(new Uint8Array(32), suite);
  const question = "00".repeat(32);
  assert.equal(await respond({ suite, key, question, counter: 7 }),
    await respond({ suite, key, question, counter: 7n }));
  for (const counter of [-1, 1.5, 2 ** 53, "7", -1n, 2n ** 64n, true, null]) {
    await assert.rejects(respond({ suite, key, question, counter }), { code: "bad_ocra_input" },
      String(counter));
  }
});

test("the token key is a non-extractable HMAC key with the suite's hash", async () => {
  for (const [suite, hash] of [["OCRA-1:HOTP-SHA1-6:QN08", "SHA-1"],
    ["OCRA-1:HOTP-SHA256-8:C-QH64", "SHA-256"], ["OCRA-1:HOTP-SHA512-8:QH64-T1M", "SHA-512"]]) {
    const key = await importOcraKey(new Uint8Array(20), suite);
    assert.equal(key.extractable, false);
    assert.deepEqual(key.usages, ["sign"]);
    assert.equal(key.algorithm.hash.name, hash);
    await assert.rejects(crypto.subtle.exportKey("raw", key));
  }
  await assert.rejects(importOcraKey(new Uint8Array(0), "OCRA-1:HOTP-SHA1-6:QN08"),
    { code: "bad_ocra_input" });
  await assert.rejects(importOcraKey(new Uint8Array(20), "OCRA-1:HOTP-SHA1-0:QN08"),
    { code: "bad_ocra_suite" });
});

test("a key for another hash, or no key, is refused", async () => {
  const key = await importOcraKey(new Uint8Array(20), "OCRA-1:HOTP-SHA1-6:QN08");
  const suite = "OCRA-1:HOTP-SHA256-6:QN08";
  await assert.rejects(respond({ suite, key, question: "1" }), { code: "bad_ocra_input" });
  await assert.rejects(respond({ suite, key: new Uint8Array(20), question: "1" }),
    { code: "bad_ocra_input" });
});

test("only a suite's description counts, not fields a caller made up", async () => {
  const real = parseSuite("OCRA-1:HOTP-SHA1-6:QN08");
  const key = await importOcraKey(new TextEncoder().encode("12345678901234567890"), real);
  const forged = { ...real, digits: 8, usesCounter: true };
  assert.equal(await respond({ suite: forged, key, question: "00000000" }), "237653");
  await assert.rejects(respond({ suite: { ...real, description: "OCRA-1" }, key, question: "1" }),
    { code: "bad_ocra_suite" });
  assert.ok(Object.isFrozen(real));
});
