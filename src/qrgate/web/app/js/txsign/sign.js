// Scheme E, S2 on the phone: verify the challenge code, show the transaction, and answer
// the OCRA question recomputed from what is shown (never a question the code merely
// states): the response signs exactly the transaction the user read.
import { CodeError } from "../shared/errors.js";
import { t } from "../shared/i18n.js";
import { measureFromFrame } from "../shared/metrics.js";
import { readVerified } from "../shared/server-keys.js";
import { TOKENS, all } from "../shared/store.js";
import { button, countdown, fact, facts, h, link, refusal, show } from "../shared/ui.js";
import { refusedScreen } from "../confirm/enrol.js";
import { readChallengeCode, transactionDigest } from "./codes.js";
import { questionForDigest } from "./ocra.js";
import { answer } from "./token.js";

export function transactionFacts(text) {
  return [fact("field.account", text.account), fact("field.platform", text.platform),
    fact("field.demand", text.demand, "demand"), fact("field.comment", text.comment)];
}

export async function signScreen(codeText) {
  let challenge;
  let token;
  try {
    challenge = await readVerified(readChallengeCode, codeText);
    const tokens = (await all(TOKENS)).filter((one) => one.active);
    token = tokens.find((one) => one.login === challenge.transaction.text.account);
    if (!token) throw new CodeError(tokens.length ? "wrong_user" : "no_token");
    if (token.suite !== challenge.suite) throw new CodeError("bad_ocra_suite");
    if (challenge.issuer !== token.issuer) throw new CodeError("wrong_issuer");
  } catch (error) {
    refusedScreen("sign.title", error);
    return;
  }
  const { transaction } = challenge;
  const timeLeft = h("p", { class: "countdown" });
  const status = h("div", { "aria-live": "polite" });
  let stopCountdown = () => {};
  const sign = button("sign.sign", async () => {
    sign.disabled = true;
    try {
      const question = questionForDigest(await transactionDigest(transaction), token.suite);
      responseScreen(await answer(token, question), challenge.expiresAt);
    } catch (error) {
      status.replaceChildren(refusal(error));
      sign.disabled = false;
    }
  }, "primary");
  show([
    h("h1", { text: t("sign.title") }),
    h("p", { class: "verified", text: t("code.verified") }),
    facts(...transactionFacts(transaction.text),
      transaction.parentDigest ? fact("field.chain", t("sign.continues")) : []),
    timeLeft, status,
    h("div", { class: "actions" }, link("sign.cancel", "#/", "button secondary"), sign),
  ], () => stopCountdown());
  stopCountdown = countdown(timeLeft, challenge.expiresAt);
  measureFromFrame();
}

function responseScreen(response, expiresAt) {
  const timeLeft = h("p", { class: "countdown" });
  let stop = () => {};
  show([
    h("h1", { text: t("sign.response_title") }),
    h("p", { text: t("sign.response_hint") }),
    h("p", { class: "response", id: "qg-response", text: response.replace(/(\d{4})(?=\d)/g, "$1 ") }),
    timeLeft,
    link("nav.home", "#/", "button primary"),
  ], () => stop());
  stop = countdown(timeLeft, expiresAt);
}
