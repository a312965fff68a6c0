// Scheme E on the phone (CN104156859B), as qrgate.core.txsign and qrgate.txsign.tokens:
// the token's enrolment code, the challenge code it signs (S2) and the chain code anyone
// can verify offline (claims 4-5).
//
// The challenge is the SHA-256 of the canonical CBOR of the transaction, so the token
// recomputes it from the text it shows (transactionDigest) instead of trusting a question
// it is told. A chain code commits each link to its predecessor's digest and each link to
// its text's digest; readChainCode checks both, and checkLinkText a text fetched for a link
// that carries only its digest.
import { CodeType, verifyCode } from "../shared/codes.js";
import { encodeCanonical } from "../shared/cbor.js";
import { hex } from "../shared/bytes.js";
import { CodeError } from "../shared/errors.js";

const DOMAIN_TEXT = "qrgate-txsign-text-1";
const DOMAIN_TRANSACTION = "qrgate-txsign-tx-1";
const DOMAIN_LINK = "qrgate-txsign-link-1";
const RESULT_VERIFIED = "verified";
const MAX_CHAIN_LINKS = 4;
const TRANSACTION_ID_BYTES = 16;
const DIGEST_BYTES = 32;

const TokenClaim = Object.freeze({
  TOKEN: 10, SECRET: 11, SUITE: 12, COUNTER: 13, SERVER: 14, LOGIN: 15,
});

const ChallengeClaim = Object.freeze({
  TRANSACTION: 10,
  ACCOUNT: 11,
  PLATFORM: 12,
  DEMAND: 13,
  COMMENT: 14,
  CREATED: 15,
  PARENT: 16,
  SUITE: 17,
});

const CHAIN_LINKS_CLAIM = 10;

const LinkKey = Object.freeze({
  TRANSACTION: 1,
  CREATED: 2,
  TEXT_DIGEST: 3,
  PARENT: 4,
  RESPONSE: 5,
  RESULT: 6,
  VERIFIED: 7,
  ACCOUNT: 8,
  PLATFORM: 9,
  DEMAND: 10,
  COMMENT: 11,
  TEXT_URL: 12,
});

const encoder = new TextEncoder();

/**
 * @typedef {object} TransactionText what the user reads and signs
 * @property {string} account
 * @property {string} platform
 * @property {string} demand
 * @property {string} comment
 */

/**
 * @typedef {object} Transaction
 * @property {Uint8Array} transactionId
 * @property {TransactionText} text
 * @property {number} createdAt
 * @property {Uint8Array | null} parentDigest
 */

/**
 * @typedef {object} Link one signed transaction of a chain
 * @property {Uint8Array} transactionId
 * @property {number} createdAt
 * @property {Uint8Array} textDigest
 * @property {Uint8Array | null} parentDigest
 * @property {string} response
 * @property {string} result
 * @property {number} verifiedAt
 * @property {TransactionText | null} text null: fetch it from textUrl, then checkLinkText
 * @property {string | null} textUrl
 * @property {Uint8Array} digest what the next link commits to
 */

/**
 * The token's enrolment code: it carries the OCRA secret, once. Throws CodeError as
 * verifyCode does, and `malformed_code` for a claim that is missing or of the wrong type.
 * @param {string} text
 * @param {{keys: import("../shared/codes.js").KeySet, now: number}} options
 * @returns {Promise<{tokenId: string, secret: Uint8Array, suite: string, counter: number,
 *   serverUrl: string, login: string, issuer: string, expiresAt: number}>}
 */
export async function readTokenEnrolCode(text, { keys, now }) {
  const code = await verifyCode(text, { keys, now, expectedType: CodeType.TOKEN_ENROL });
  const { claims } = code;
  const tokenId = claims.get(TokenClaim.TOKEN);
  const secret = claims.get(TokenClaim.SECRET);
  const suite = claims.get(TokenClaim.SUITE);
  const counter = claims.get(TokenClaim.COUNTER);
  const serverUrl = claims.get(TokenClaim.SERVER);
  const login = claims.get(TokenClaim.LOGIN);
  if (!(typeof tokenId === "string" && secret instanceof Uint8Array &&
        typeof suite === "string" && Number.isInteger(counter) &&
        typeof serverUrl === "string" && typeof login === "string")) {
    throw new CodeError("malformed_code", "token enrolment claims are missing or ill-typed");
  }
  return {
    tokenId, secret, suite, counter, serverUrl, login,
    issuer: code.issuer, expiresAt: code.expiresAt,
  };
}

/**
 * S2: verify a challenge code before showing anything. Throws CodeError as verifyCode
 * does, and `malformed_code` for a claim that is missing or of the wrong type.
 * @param {string} text
 * @param {{keys: import("../shared/codes.js").KeySet, now: number}} options
 * @returns {Promise<{transaction: Transaction, suite: string, expiresAt: number,
 *   issuer: string}>}
 */
export async function readChallengeCode(text, { keys, now }) {
  const code = await verifyCode(text, { keys, now, expectedType: CodeType.TXSIGN_CHALLENGE });
  const { claims } = code;
  const parent = claims.get(ChallengeClaim.PARENT);
  const transaction = {
    transactionId: bytesClaim(claims, ChallengeClaim.TRANSACTION, TRANSACTION_ID_BYTES),
    text: {
      account: textClaim(claims, ChallengeClaim.ACCOUNT),
      platform: textClaim(claims, ChallengeClaim.PLATFORM),
      demand: textClaim(claims, ChallengeClaim.DEMAND),
      comment: textClaim(claims, ChallengeClaim.COMMENT),
    },
    createdAt: intClaim(claims, ChallengeClaim.CREATED),
    parentDigest: isNone(parent) ? null : bytesClaim(claims, ChallengeClaim.PARENT, DIGEST_BYTES),
  };
  return {
    transaction,
    suite: textClaim(claims, ChallengeClaim.SUITE),
    expiresAt: code.expiresAt,
    issuer: code.issuer,
  };
}

/**
 * Verify a chain offline: the signature, every link's commitment to the link before it,
 * and every carried text. Throws CodeError as verifyCode does, `malformed_code`,
 * `bad_chain` (1 to 4 links, the first without parent, each verified), `broken_chain`
 * or `text_mismatch`.
 * @param {string} text
 * @param {{keys: import("../shared/codes.js").KeySet, now: number}} options
 * @returns {Promise<{links: Link[], issuer: string, issuedAt: number}>}
 */
export async function readChainCode(text, { keys, now }) {
  const code = await verifyCode(text, { keys, now, expectedType: CodeType.TXSIGN_CHAIN });
  const rawLinks = code.claims.get(CHAIN_LINKS_CLAIM);
  if (!Array.isArray(rawLinks) || rawLinks.length === 0) {
    throw new CodeError("malformed_code", "a chain code carries a list of links");
  }
  const parsed = rawLinks.map(linkFromClaims);
  const links = await Promise.all(
    parsed.map(async (link) => ({ ...link, digest: await linkDigest(link) })));
  await checkChain(links);
  return { links, issuer: code.issuer, issuedAt: code.issuedAt };
}

/**
 * A link's text, fetched from its textUrl, against the digest the chain signed. Throws
 * CodeError `text_mismatch`.
 * @param {Link} link
 * @param {TransactionText} text
 * @returns {Promise<void>}
 */
export async function checkLinkText(link, text) {
  if (hex(await textDigest(text)) !== hex(link.textDigest)) {
    throw new CodeError("text_mismatch", "the transaction text does not match its signed digest");
  }
}

/**
 * @param {TransactionText} text
 * @returns {Promise<Uint8Array>}
 */
export function textDigest(text) {
  return sha256Of([DOMAIN_TEXT, text.account, text.platform, text.demand, text.comment]);
}

/**
 * S1: the challenge; one changed byte anywhere in the transaction changes it. Its OCRA
 * question is questionForDigest (ocra.js) of this digest.
 * @param {Transaction} transaction
 * @returns {Promise<Uint8Array>}
 */
export async function transactionDigest(transaction) {
  return rawTransactionDigest({
    transactionId: transaction.transactionId,
    textDigest: await textDigest(transaction.text),
    createdAt: transaction.createdAt,
    parentDigest: transaction.parentDigest ?? null,
  });
}

/**
 * The question the token answers to activate itself, bound to its id (hex).
 * @param {string} tokenId
 * @returns {Promise<string>}
 */
export async function activationQuestion(tokenId) {
  const digest = await crypto.subtle.digest("SHA-256",
    encoder.encode(`qrgate-token-activate:${tokenId}`));
  return hex(new Uint8Array(digest));
}

/** qrgate.core.txsign.check_chain, in its order. @param {Link[]} links */
async function checkChain(links) {
  if (links.length < 1 || links.length > MAX_CHAIN_LINKS) {
    throw new CodeError("bad_chain", `a chain has 1 to ${MAX_CHAIN_LINKS} links`);
  }
  if (links[0].parentDigest !== null) {
    throw new CodeError("bad_chain", "the first link has no parent");
  }
  for (let i = 1; i < links.length; i += 1) {
    const { parentDigest } = links[i];
    if (parentDigest === null || hex(parentDigest) !== hex(links[i - 1].digest)) {
      throw new CodeError("broken_chain", "a link does not commit to the link before it");
    }
  }
  for (const link of links) {
    if (link.text !== null) {
      await checkLinkText(link, link.text);
    } else if (link.textUrl === null) {
      throw new CodeError("malformed_code",
        "a link carries neither its text nor where to fetch it");
    }
    if (link.result !== RESULT_VERIFIED) {
      throw new CodeError("bad_chain", "a link was not verified");
    }
  }
}

/** @param {unknown} raw */
function linkFromClaims(raw) {
  if (!(raw instanceof Map)) throw new CodeError("malformed_code", "a link is a map");
  const text = raw.has(LinkKey.ACCOUNT)
    ? {
      account: textClaim(raw, LinkKey.ACCOUNT),
      platform: textClaim(raw, LinkKey.PLATFORM),
      demand: textClaim(raw, LinkKey.DEMAND),
      comment: textClaim(raw, LinkKey.COMMENT),
    }
    : null;
  const parent = raw.get(LinkKey.PARENT);
  const url = raw.get(LinkKey.TEXT_URL);
  return {
    transactionId: bytesClaim(raw, LinkKey.TRANSACTION, TRANSACTION_ID_BYTES),
    createdAt: intClaim(raw, LinkKey.CREATED),
    textDigest: bytesClaim(raw, LinkKey.TEXT_DIGEST, DIGEST_BYTES),
    parentDigest: isNone(parent) ? null : bytesClaim(raw, LinkKey.PARENT, DIGEST_BYTES),
    response: textClaim(raw, LinkKey.RESPONSE),
    result: textClaim(raw, LinkKey.RESULT),
    verifiedAt: intClaim(raw, LinkKey.VERIFIED),
    text,
    textUrl: isNone(url) ? null : textClaim(raw, LinkKey.TEXT_URL),
  };
}

/** Link.digest: what the next transaction of the chain commits to. */
async function linkDigest(link) {
  const transaction = await rawTransactionDigest(link);
  return sha256Of([DOMAIN_LINK, transaction, link.response, link.result, link.verifiedAt]);
}

/**
 * @param {{transactionId: Uint8Array, textDigest: Uint8Array, createdAt: number,
 *   parentDigest: Uint8Array | null}} parts
 */
function rawTransactionDigest({ transactionId, textDigest, createdAt, parentDigest }) {
  return sha256Of([DOMAIN_TRANSACTION, transactionId, textDigest, createdAt, parentDigest]);
}

/** SHA-256 of the canonical CBOR array of `items`, as qrgate.core.txsign._sha256. */
async function sha256Of(items) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encodeCanonical(items)));
}

/** An absent claim, or one that is null: Python's claims.get() cannot tell them apart. */
function isNone(value) {
  return value === undefined || value === null;
}

/** @param {Map<number, unknown>} claims @param {number} key @returns {string} */
function textClaim(claims, key) {
  const value = claims.get(key);
  if (typeof value !== "string") throw new CodeError("malformed_code", `claim ${key} must be text`);
  return value;
}

/** @param {Map<number, unknown>} claims @param {number} key @returns {number} */
function intClaim(claims, key) {
  const value = claims.get(key);
  if (!Number.isInteger(value)) {
    throw new CodeError("malformed_code", `claim ${key} must be an integer`);
  }
  return /** @type {number} */ (value);
}

/**
 * @param {Map<number, unknown>} claims @param {number} key @param {number} size
 * @returns {Uint8Array}
 */
function bytesClaim(claims, key, size) {
  const value = claims.get(key);
  if (!(value instanceof Uint8Array) || value.length !== size) {
    throw new CodeError("malformed_code", `claim ${key} must be ${size} bytes`);
  }
  return value;
}
