// The server's code-signing keys (its JWKS at /v1/keys), kept on the phone so codes verify
// with no network; fetched again only when a code names a key id not seen yet (the server
// rotated), as the Python simulator does.
import { API_ROOT, publicCall } from "./api.js";
import { importJwks } from "./codes.js";
import { SERVER_KEYS, get, put } from "./store.js";

/** @type {Promise<object> | null} */
let cached = null;

async function fetchKeys() {
  const jwks = await publicCall("GET", "/v1/keys");
  await put(SERVER_KEYS, { server: API_ROOT.href, jwks, fetchedAt: Date.now() });
  return importJwks(jwks);
}

async function currentKeys() {
  const saved = await get(SERVER_KEYS, API_ROOT.href);
  return saved ? importJwks(saved.jwks) : fetchKeys();
}

/** Run `read(text, {keys, now})` (a code reader of codes.js); on an unknown key id, fetch
 * the keys once more and read again. Nothing else is fetched and nothing is sent. */
export async function readVerified(read, text) {
  cached ??= currentKeys().catch((error) => { cached = null; throw error; });
  const now = Date.now() / 1000;
  try {
    return await read(text, { keys: await cached, now });
  } catch (error) {
    if (error.code !== "unknown_key") throw error;
    cached = fetchKeys().catch((failure) => { cached = null; throw failure; });
    return read(text, { keys: await cached, now: Date.now() / 1000 });
  }
}
