// Scheme C, 606-609 on the phone: verify the scanned code offline, report the scan, show
// the verified context with Decline as the default, match the number, decide.
import { CodeError } from "../shared/errors.js";
import { signedCall } from "../shared/api.js";
import { readConfirmCode } from "./codes.js";
import { operationText, t } from "../shared/i18n.js";
import { measureFromFrame } from "../shared/metrics.js";
import { readVerified } from "../shared/server-keys.js";
import { ACCOUNTS, all } from "../shared/store.js";
import { countdown, fact, facts, h, link, refusal, show } from "../shared/ui.js";
import { refusedScreen } from "./enrol.js";
import { lockHint, unlockApproval } from "../lock/unlock.js";
import { fromCode, fromScan, isUnreachable, offlineScreen } from "./offline.js";

const TITLE = "approve.title";

async function accountFor(code) {
  const accounts = await all(ACCOUNTS);
  return accounts.find((account) => account.orgId === code.orgId && account.login === code.login);
}

export async function approveScreen(text) {
  let code;
  let account;
  let context;
  try {
    code = await readVerified(readConfirmCode, text);
    measureFromFrame("qrgate:frame-to-verified", false);
    account = await accountFor(code);
    if (!account) throw new CodeError("not_enrolled_here");
    // The server refuses it too; saying so here sends nothing to a misconfigured node.
    if (code.issuer !== account.issuer) throw new CodeError("wrong_issuer");
    context = await signedCall(account, "POST", "/v1/confirm/scan", { code: text });
  } catch (error) {
    // No network: approve with a code typed into the website instead (offline.js).
    if (account && isUnreachable(error)) offlineScreen(account, fromCode(code));
    else refusedScreen(TITLE, error);
    return;
  }
  contextScreen(account, context);
  measureFromFrame();
}

function amountText(scene) {
  if (!scene.amount) return "";
  return scene.currency ? `${scene.amount} ${scene.currency}` : scene.amount;
}

/** Two-digit number matching: typed, or picked on the digit pad under the field. */
function numberField() {
  const input = h("input", { id: "qg-number", inputmode: "numeric", pattern: "[0-9]{2}",
    maxlength: 2, autocomplete: "off", on: { keydown: (event) => {
      // Enter here would submit with the form's first button, Decline: a person who typed
      // the number and pressed Enter meant neither. Only a pressed button decides.
      if (event.key === "Enter") event.preventDefault();
    } } });
  const pad = h("div", { class: "digit-pad", role: "group", "aria-label": t("approve.pad") },
    ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 0].map((digit) => h("button", { type: "button",
      text: String(digit), on: { click: () => {
        input.value = (input.value.length >= 2 ? "" : input.value) + digit;
      } } })),
    h("button", { type: "button", class: "clear", text: "⌫", "aria-label": t("approve.clear"),
      on: { click: () => { input.value = input.value.slice(0, -1); } } }));
  return { input, nodes: [h("label", { for: "qg-number", text: t("approve.number") }), input, pad] };
}

function contextScreen(account, context) {
  const { service, scene, requester } = context;
  const timeLeft = h("p", { class: "countdown" });
  const status = h("div", { "aria-live": "polite" });
  const number = context.number_matching ? numberField() : null;
  const decline = h("button", { type: "submit", value: "deny", class: "primary decline",
    text: t("approve.decline"), autofocus: true });
  const approve = h("button", { type: "submit", value: "approve", class: "secondary approve",
    text: t("approve.approve") });
  // "This wasn't me": a denial that also tells the server someone else is trying.
  const report = h("button", { type: "submit", value: "report", class: "link report",
    text: t("approve.report") });
  let stopCountdown = () => {};
  const form = h("form", { class: "decide", on: { submit: async (event) => {
    event.preventDefault();
    const choice = event.submitter === approve ? "approve" : "deny";
    const body = { decision: choice };
    if (event.submitter === report) body.report = true;
    if (choice === "approve" && number) {
      if (!/^[0-9]{2}$/.test(number.input.value)) {
        status.replaceChildren(refusal(new CodeError("number_required")));
        return;
      }
      body.number = Number(number.input.value);
    }
    // App lock: when the service requires it, the proof over this decision (lock/unlock.js).
    if (!(await unlockApproval(account, context, body, status))) return;
    decline.disabled = approve.disabled = report.disabled = true;
    try {
      const result = await signedCall(account, "POST",
        `/v1/confirm/challenges/${context.challenge_id}/decision`, body);
      stopCountdown();
      resultScreen(result);
    } catch (error) {
      if (choice === "approve" && isUnreachable(error)) {
        stopCountdown();
        offlineScreen(account, fromScan(context), { number: body.number ?? null });
        return;
      }
      status.replaceChildren(refusal(error), lockHint(error));
      decline.disabled = approve.disabled = report.disabled = false;
    }
  } } }, ...(number ? number.nodes : []), status, h("div", { class: "actions" }, decline, approve),
  report);
  show([
    h("h1", { text: t("approve.title") }),
    h("p", { class: "verified", text: t("code.verified") }),
    facts(
      fact("field.service", `${service.organisation} · ${service.application}`),
      fact("field.origin", service.origin),
      fact("field.operation", operationText(context.operation), "operation"),
      fact("field.amount", amountText(scene), "amount"),
      fact("field.content", scene.content),
      fact("field.account", context.login),
      fact("field.browser", requester.user_agent),
      fact("field.place", [requester.place, requester.ip].filter(Boolean).join(" · ")),
    ),
    timeLeft,
    form,
  ], () => stopCountdown());
  stopCountdown = countdown(timeLeft, context.expires_at, () => {
    decline.disabled = approve.disabled = report.disabled = true;
    status.replaceChildren(refusal(new CodeError("expired")));
  });
  decline.focus();
}

function resultScreen(result) {
  // A decline is its own explanation; a refusal says why it happened.
  const reason = result.state === "rejected" ? result.reason : null;
  const reported = result.reason === "reported_by_user";
  show([
    h("h1", { text: reported ? t("result.reported") : t(`result.${result.state}`) }),
    h("p", { class: `result ${result.state}`, "data-state": result.state,
      text: reported ? t("result.reported_detail") : t(`result.${result.state}_detail`) }),
    reason ? refusal(new CodeError(reason)) : null,
    link("nav.home", "#/", "button primary"),
  ]);
}
