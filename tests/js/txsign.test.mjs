// Scheme E's codes on the phone against vectors made by the Python reference: token
// enrolment (qrgate.txsign.tokens), challenge and chain codes and their digests
// (qrgate.core.txsign), and the token's activation answer.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { importJwks } from "../../src/qrgate/web/app/js/shared/codes.js";
import {
  activationQuestion, checkLinkText, readChainCode, readChallengeCode, readTokenEnrolCode,
  textDigest, transactionDigest,
} from "../../src/qrgate/web/app/js/txsign/codes.js";
import { importOcraKey, parseSuite, respond } from "../../src/qrgate/web/app/js/txsign/ocra.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../vectors/codes/${name}`, import.meta.url), "utf8"));
const TXSIGN = vectors("txsign.json");
const keys = await importJwks(vectors("keys.json").jwks);
const READERS = {
  token_enrol: readTokenEnrolCode, challenge: readChallengeCode, chain: readChainCode,
};
const fromHex = (text) => Uint8Array.from(Buffer.from(text, "hex"));

/** Bytes as hex, everywhere in a result, as the vectors write them. */
function plain(value) {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** A transaction of the vectors with its bytes back as bytes. */
function transactionOf(json) {
  return {
    ...json,
    transactionId: fromHex(json.transactionId),
    parentDigest: json.parentDigest === null ? null : fromHex(json.parentDigest),
  };
}

test("valid codes read to exactly what Python reads", async () => {
  for (const v of TXSIGN.valid) {
    const read = await READERS[v.reader](v.text, { keys, now: v.now });
    assert.deepEqual(plain(read), v.expected, v.name);
  }
});

test("refused codes throw Python's error code", async () => {
  for (const v of [...TXSIGN.refused, ...TXSIGN.stricter_in_js]) {
    await assert.rejects(READERS[v.reader](v.text, { keys, now: v.now }),
      { name: "CodeError", code: v.error }, v.name);
  }
});

test("the token secret comes back as bytes", async () => {
  const [token] = TXSIGN.valid.filter((v) => v.reader === "token_enrol");
  const { secret } = await readTokenEnrolCode(token.text, { keys, now: token.now });
  assert.ok(secret instanceof Uint8Array);
});

test("a challenge's transaction digest is the one its chain link signs", async () => {
  const chain = TXSIGN.valid.find((v) => v.name === "chain_2_links_texts");
  const { links } = await readChainCode(chain.text, { keys, now: chain.now });
  for (const name of ["challenge", "challenge_with_parent"]) {
    const v = TXSIGN.valid.find((vector) => vector.name === name);
    const { transaction } = await readChallengeCode(v.text, { keys, now: v.now });
    const link = links.find((l) => plain(l.transactionId) === plain(transaction.transactionId));
    assert.deepEqual(await textDigest(transaction.text), link.textDigest, name);
    assert.deepEqual(plain(transaction.parentDigest), plain(link.parentDigest), name);
  }
});

test("fetched link texts are checked against their signed digest", async () => {
  const chains = Object.fromEntries(TXSIGN.valid.map((v) => [v.name, v]));
  for (const { chain, link, text, error } of TXSIGN.linkTexts) {
    const { links } = await readChainCode(chains[chain].text, { keys, now: chains[chain].now });
    const checked = checkLinkText(links[link], text);
    if (error === null) {
      await checked;
    } else {
      await assert.rejects(checked, { name: "CodeError", code: error });
    }
  }
});

test("text and transaction digests are Python's", async () => {
  for (const { transaction, textDigest: text, transactionDigest: digest } of TXSIGN.digests) {
    assert.equal(plain(await textDigest(transaction.text)), text);
    assert.equal(plain(await transactionDigest(transactionOf(transaction))), digest);
  }
});

test("the token activates with Python's answer", async () => {
  const secret = fromHex(TXSIGN.tokenSecret);
  for (const { tokenId, suite, question, counter, timeStep, response } of TXSIGN.activations) {
    assert.equal(await activationQuestion(tokenId), question);
    const key = await importOcraKey(secret, suite);
    const { usesCounter } = parseSuite(suite);
    assert.equal(await respond({ suite, key, question, counter: usesCounter ? counter : null,
      timeStep }), response, suite);
  }
});
