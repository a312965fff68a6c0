// CBOR as strictly as the server reads it (qrgate.core.cose.loads_strict on cbor2), on the
// vendored cborg. Anything a lenient decoder would interpret is refused as malformed_code.
//
// Some refusals go beyond cbor2's, for values qrgate never writes: floats (in JavaScript 1.0
// and 1 are the same number, so a float could pass an integer check the server refuses),
// integers outside the safe range, non-minimal integers, and tags other than COSE_Sign1's.
import { Tokenizer, Type, decode, encode } from "../../../vendor/cborg/cborg.js";
import { CodeError } from "./errors.js";

// As cbor2 counts it: at most 16 containers (arrays, maps, tags) around any item.
const MAX_DEPTH = 16;
const COSE_SIGN1_TAG = 18;
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A tagged item; only COSE_Sign1's tag 18 decodes, everything else is refused. */
export class Tagged {
  /** @param {number} tag @param {unknown} value */
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}

// cborg has no depth limit and decodes invalid UTF-8 to U+FFFD; cbor2 refuses both.
class StrictTokenizer extends Tokenizer {
  /** @param {Uint8Array} data @param {object} options */
  constructor(data, options) {
    super(data, options);
    /** @type {number[]} items still to come in each open container, innermost last */
    this.open = [];
  }

  /** @returns {import("../../../vendor/cborg/cborg.js").Token} */
  next() {
    const token = super.next();
    while (this.open.length > 0 && this.open[this.open.length - 1] === 0) this.open.pop();
    if (this.open.length > MAX_DEPTH) throw new Error("containers nested too deep");
    if (this.open.length > 0) this.open[this.open.length - 1] -= 1;
    if (token.type === Type.array) this.open.push(token.value);
    if (token.type === Type.map) this.open.push(2 * token.value);
    if (token.type === Type.tag) this.open.push(1);
    if (token.type === Type.float) throw new Error("floats are not used in qrgate codes");
    if (token.type === Type.string) fatalUtf8.decode(token.byteValue);
    return token;
  }
}

const tags = [];
tags[COSE_SIGN1_TAG] = (/** @type {unknown} */ value) => new Tagged(COSE_SIGN1_TAG, value);

/**
 * Exactly one CBOR item: maps come back as Map (integer keys stay numbers), byte strings as
 * Uint8Array, tag 18 as Tagged. Throws CodeError `malformed_code` for trailing bytes,
 * duplicate map keys, indefinite lengths, non-minimal integers, undefined, floats, big
 * integers, other tags, invalid UTF-8, or nesting deeper than cbor2 allows.
 * @param {Uint8Array} bytes
 * @returns {unknown}
 */
export function decodeStrict(bytes) {
  // The tokenizer decodes with exactly these (cborg merges its lenient defaults only into
  // the decoder's copy), so every strict option is spelled out.
  const options = {
    useMaps: true,
    rejectDuplicateMapKeys: true,
    strict: true,
    allowIndefinite: false,
    allowUndefined: false,
    allowBigInt: false,
    retainStringBytes: true,
    tags,
  };
  try {
    return decode(bytes, { ...options, tokenizer: new StrictTokenizer(bytes, options) });
  } catch (error) {
    throw new CodeError("malformed_code", `not valid CBOR: ${error.message}`);
  }
}

/**
 * The canonical encoding (RFC 8949 §4.2.1; what cbor2.dumps(..., canonical=True) writes for
 * text, bytes, integers, null, arrays and maps). Throws CodeError `invalid_field` for text
 * with a lone surrogate, which has no UTF-8 form (cbor2 refuses it too).
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function encodeCanonical(value) {
  return encode(value, { typeEncoders: { string: wellFormedText } });
}

/** @param {string} text @returns {null} null: cborg encodes it as usual */
function wellFormedText(text) {
  if (!text.isWellFormed()) throw new CodeError("invalid_field", "text has a lone surrogate");
  return null;
}
