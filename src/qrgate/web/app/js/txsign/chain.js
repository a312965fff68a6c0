// Scheme E, claims 4-5: a chain code verified on the phone. The server's signature, each
// link's commitment to the one before and each carried text are checked offline; a link
// that carries only its text's digest has the text fetched and checked against it.
import { CodeError } from "../shared/errors.js";
import { formatTime, t } from "../shared/i18n.js";
import { measureFromFrame } from "../shared/metrics.js";
import { readVerified } from "../shared/server-keys.js";
import { fact, facts, h, link, refusal, show } from "../shared/ui.js";
import { refusedScreen } from "../confirm/enrol.js";
import { checkLinkText, readChainCode } from "./codes.js";
import { transactionFacts } from "./sign.js";

async function fetchedText(chainLink) {
  const response = await fetch(chainLink.textUrl, { credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new CodeError("text_unavailable");
  const { account, platform, demand, comment } = await response.json();
  const text = { account, platform, demand, comment };
  await checkLinkText(chainLink, text);
  return text;
}

async function linkView(chainLink, index) {
  let text = chainLink.text;
  let problem = null;
  if (!text) {
    try {
      text = await fetchedText(chainLink);
    } catch (error) {
      problem = refusal(error);
    }
  }
  return h("li", { class: "link", "data-verified": problem ? "partly" : "yes" },
    h("h2", { text: t("chain.link", { number: index + 1 }) }),
    facts(...(text ? transactionFacts(text) : []), fact("field.response", chainLink.response),
      fact("field.verified_at", formatTime(chainLink.verifiedAt))),
    problem);
}

export async function chainScreen(codeText) {
  let chain;
  try {
    chain = await readVerified(readChainCode, codeText);
  } catch (error) {
    refusedScreen("chain.title", error);
    return;
  }
  const links = await Promise.all(chain.links.map(linkView));
  // The signature and the links held; a text that could not be fetched or checked leaves
  // that link's content unproven, and the verdict must not claim more.
  const whole = links.every((view) => view.dataset.verified === "yes");
  const params = { count: chain.links.length, issuer: chain.issuer };
  show([
    h("h1", { text: t("chain.title") }),
    h("p", { class: whole ? "verified" : "note", id: "qg-chain-verdict",
      text: t(whole ? "chain.verified" : "chain.partly", params) }),
    h("ol", { class: "chain" }, ...links),
    link("nav.home", "#/", "button primary"),
  ]);
  measureFromFrame();
}
