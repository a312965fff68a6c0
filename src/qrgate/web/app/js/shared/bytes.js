// Byte helpers shared by the codec, the device signatures and OCRA (the browser has no
// Buffer): base64url as the server writes and reads it, hex as Python's bytes.hex().
import { CodeError } from "./errors.js";

/**
 * base64url without padding (RFC 7515).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function b64u(bytes) {
  return btoa(Array.from(bytes, (byte) => String.fromCharCode(byte)).join(""))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * base64url as the server reads it: only the URL-safe alphabet, no padding; unused
 * trailing bits are ignored. Throws CodeError `malformed` otherwise.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function fromB64u(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new CodeError("malformed", "not a base64url string");
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

/**
 * Lowercase hex, as Python's bytes.hex().
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** @param {...Uint8Array} parts */
export function concat(...parts) {
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
