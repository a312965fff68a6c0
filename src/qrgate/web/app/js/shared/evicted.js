// Keys the browser deleted. Browsers evict a web app's storage under pressure, Safari after
// seven days unused; the cookies the server sets at each enrolment and token activation
// (qrgate/http/enrolled_cookie.py) survive that, so an id listed there with nothing here is
// an account or token whose keys are gone: the user must enrol again, and should hear it
// now rather than from a failed scan.
export const DEVICES = "qrgate_devices";
export const TOKEN_IDS = "qrgate_tokens";
const MAX_AGE = 400 * 86400;

function listed(cookie) {
  const pair = document.cookie.split("; ").find((part) => part.startsWith(`${cookie}=`));
  return pair ? pair.slice(cookie.length + 1).split(".").filter((id) => /^[0-9a-f]{32}$/.test(id)) : [];
}

/** Ids in `cookie` this browser no longer holds (`held`: the ids it does hold). */
export function lost(cookie, held) {
  const holding = new Set(held);
  return listed(cookie).filter((id) => !holding.has(id));
}

/** Stop listing ids: removed on purpose, or their loss acknowledged. */
export function forget(cookie, ids) {
  const kept = listed(cookie).filter((id) => !ids.includes(id));
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `${cookie}=${kept.join(".")}; path=/; max-age=${kept.length ? MAX_AGE : 0}`
    + `; samesite=strict${secure}`;
}
