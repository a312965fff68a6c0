// Base45 (RFC 9285), the encoding inside every qrgate code: its alphabet is exactly the QR
// alphanumeric set. Written here because the npm packages need Node's Buffer.
import { CodeError } from "./errors.js";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/**
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function encode(bytes) {
  let text = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const value = bytes[i] * 256 + bytes[i + 1];
    text += ALPHABET[value % 45] + ALPHABET[Math.floor(value / 45) % 45] +
      ALPHABET[Math.floor(value / 2025)];
  }
  if (bytes.length % 2 === 1) {
    const value = bytes[bytes.length - 1];
    text += ALPHABET[value % 45] + ALPHABET[Math.floor(value / 45)];
  }
  return text;
}

/**
 * Throws CodeError `malformed_code` for any character outside the alphabet (lowercase
 * included: QR alphanumeric mode has none), a dangling character, or a group that
 * overflows its bytes.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function decode(text) {
  const digits = Array.from(text, (char) => ALPHABET.indexOf(char));
  if (digits.includes(-1)) {
    throw new CodeError("malformed_code", "code contains characters outside the Base45 alphabet");
  }
  if (digits.length % 3 === 1) throw new CodeError("malformed_code", "code is not valid Base45");
  const bytes = [];
  for (let i = 0; i < digits.length; i += 3) {
    const group = digits.slice(i, i + 3);
    const value = group.reduce((sum, digit, place) => sum + digit * 45 ** place, 0);
    if (value > (group.length === 3 ? 0xffff : 0xff)) {
      throw new CodeError("malformed_code", "code is not valid Base45");
    }
    if (group.length === 3) bytes.push(value >> 8);
    bytes.push(value & 0xff);
  }
  return Uint8Array.from(bytes);
}
