// Scheme E: the phone's OCRA software token. Enrolled from its QR: the secret is imported
// at once as a non-extractable HMAC key (the bytes are not kept), and the token activates
// itself by answering the server's activation question.
import { TOKEN_IDS, forget } from "../shared/evicted.js";
import { CodeError } from "../shared/errors.js";
import { isThisServer, publicCall } from "../shared/api.js";
import { formatTime, t } from "../shared/i18n.js";
import { readVerified } from "../shared/server-keys.js";
import { TOKENS, get, put, remove, takeCounter } from "../shared/store.js";
import { button, fact, facts, h, link, refusal, show } from "../shared/ui.js";
import { refusedScreen } from "../confirm/enrol.js";
import { activationQuestion, readTokenEnrolCode } from "./codes.js";
import { importOcraKey, parseSuite, respond } from "./ocra.js";

/** The token's response to `question`, with the next counter value taken first. */
export async function answer(token, question) {
  const suite = parseSuite(token.suite);
  const { counter } = suite.usesCounter ? await takeCounter(token.tokenId) : { counter: null };
  const timeStep = suite.timeStep ? Math.floor(Date.now() / 1000 / suite.timeStep) : null;
  return respond({ suite: token.suite, key: token.key, question, counter, timeStep });
}

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

async function activate(token) {
  // Kept until activation succeeds: a retry after a lost reply sends the same answer and
  // id, which the server recognises as the same request (never a second counter step).
  if (!token.activation) {
    const response = await answer(token, await activationQuestion(token.tokenId));
    token = { ...(await get(TOKENS, token.tokenId)), activation: { response, clientId: randomId() } };
    await put(TOKENS, token);
  }
  await publicCall("POST", `/v1/txsign/tokens/${token.tokenId}/activate`,
    { response: token.activation.response, client_id: token.activation.clientId });
  const active = { ...(await get(TOKENS, token.tokenId)), activation: null, active: true };
  await put(TOKENS, active);
  return active;
}

export async function tokenEnrolScreen(text) {
  let code;
  try {
    code = await readVerified(readTokenEnrolCode, text);
    if (!isThisServer(code.serverUrl)) throw new CodeError("other_server");
  } catch (error) {
    refusedScreen("token.title", error);
    return;
  }
  const status = h("div", { "aria-live": "polite" });
  const add = button("token.add", async () => {
    add.disabled = true;
    status.replaceChildren();
    try {
      let token = await get(TOKENS, code.tokenId);
      if (!token) {
        token = {
          tokenId: code.tokenId, key: await importOcraKey(code.secret, code.suite),
          suite: code.suite, counter: code.counter, login: code.login, issuer: code.issuer,
          serverUrl: code.serverUrl, createdAt: Date.now() / 1000, active: false, activation: null,
        };
        await put(TOKENS, token);
      }
      await activate(token);
      location.hash = `#/token/${encodeURIComponent(code.tokenId)}`;
    } catch (error) {
      status.replaceChildren(refusal(error));
      add.disabled = false;
    }
  }, "primary");
  show([
    h("h1", { text: t("token.title") }),
    h("p", { class: "verified", text: t("code.verified") }),
    facts(fact("field.account", code.login), fact("field.service", code.issuer),
      fact("field.suite", code.suite), fact("field.valid_until", formatTime(code.expiresAt))),
    status, add,
  ]);
}

export async function tokenScreen(tokenId) {
  const token = await get(TOKENS, tokenId);
  if (!token) {
    location.hash = "#/";
    return;
  }
  const status = h("div", { "aria-live": "polite" });
  show([
    h("h1", { text: token.login }),
    h("p", { class: `result ${token.active ? "approved" : "pending"}`,
      text: t(token.active ? "token.active" : "token.inactive") }),
    facts(fact("field.service", token.issuer), fact("field.suite", token.suite),
      fact("field.token_id", token.tokenId), fact("field.since", formatTime(token.createdAt))),
    status,
    token.active ? link("token.sign_hint", "#/scan", "button primary") : button("token.retry", async () => {
      try {
        await activate(token);
        await tokenScreen(tokenId);
      } catch (error) {
        status.replaceChildren(refusal(error));
      }
    }, "primary"),
    button("token.remove", async () => {
      if (!confirm(t("token.remove_confirm", { login: token.login }))) return;
      await remove(TOKENS, tokenId);
      forget(TOKEN_IDS, [tokenId]);
      location.hash = "#/";
    }, "danger"),
  ]);
}
