// What the app keeps on the phone, in IndexedDB: its device keys and accounts (scheme C),
// its OCRA tokens (scheme E) and each server's code-signing keys. CryptoKey objects are
// stored as they are: IndexedDB keeps a non-extractable key usable without ever exposing
// its bytes, which is what keeps the keys on this phone.

const DB_NAME = "qrgate";
const DB_VERSION = 1;
export const ACCOUNTS = "accounts";
export const TOKENS = "tokens";
export const SERVER_KEYS = "server-keys";

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function open() {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore(ACCOUNTS, { keyPath: "deviceId" });
      db.createObjectStore(TOKENS, { keyPath: "tokenId" });
      db.createObjectStore(SERVER_KEYS, { keyPath: "server" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return opening;
}

async function store(name, mode) {
  return (await open()).transaction(name, mode).objectStore(name);
}

export async function all(name) {
  return request((await store(name, "readonly")).getAll());
}

export async function get(name, key) {
  return request((await store(name, "readonly")).get(key));
}

export async function put(name, value) {
  return request((await store(name, "readwrite")).put(value));
}

export async function remove(name, key) {
  return request((await store(name, "readwrite")).delete(key));
}

/** Take the token's next counter value and store its successor in one transaction, before
 * the response is computed: a counter value is never used twice, even by two open tabs. */
export async function takeCounter(tokenId) {
  const tokens = await store(TOKENS, "readwrite");
  const token = await request(tokens.get(tokenId));
  if (!token) throw new Error("no such token");
  const counter = token.counter;
  await request(tokens.put({ ...token, counter: counter + 1 }));
  return { token, counter };
}

/** Ask the browser not to evict the app's data under storage pressure; false when refused. */
export async function persist() {
  if (!navigator.storage || !navigator.storage.persist) return false;
  return (await navigator.storage.persisted()) || navigator.storage.persist();
}
