// Scheme C with no network (qrgate.core.offline): the scan or the decision could not reach
// the server, so the app shows what it verified offline from the code itself, asks for the
// number the website shows when the code says so, and shows an 8-digit code the user types
// into the website's page ("Phone offline?"). The code approves this one request, once; not
// typing it declines.
import { ApiError } from "../shared/api.js";
import { CodeError } from "../shared/errors.js";
import { operationText, t } from "../shared/i18n.js";
import { fact, facts, h, link, refusal, show } from "../shared/ui.js";
import { offlineCode } from "./offline-code.js";

/** Whether a call failed because the server could not be reached at all (fetch threw),
 * as opposed to the server refusing. */
export function isUnreachable(error) {
  return error instanceof ApiError && error.status === 0;
}

/**
 * What the offline screen shows and computes from, as a scanned code gives it
 * (readConfirmCode), or as a scan that got through gave it (the /v1/confirm/scan answer).
 * @typedef {object} OfflineRequest
 * @property {string} challengeId hex
 * @property {boolean} numberMatching
 * @property {string} service
 * @property {string} operation
 * @property {string | null} amount
 * @property {string} login
 */

/** @param {import("./codes.js").ConfirmCode} code @returns {OfflineRequest} */
export function fromCode(code) {
  return { challengeId: code.challengeId, numberMatching: code.numberMatching,
    service: code.businessId, operation: code.operation, amount: code.amount, login: code.login };
}

/** @returns {OfflineRequest} */
export function fromScan(context) {
  const { scene = {} } = context;
  return { challengeId: context.challenge_id, numberMatching: context.number_matching,
    service: `${context.service.organisation} · ${context.service.application}`,
    operation: context.operation,
    amount: scene.amount ? [scene.amount, scene.currency].filter(Boolean).join(" ") : null,
    login: context.login };
}

/**
 * @param {{offlineKey?: CryptoKey | null}} account
 * @param {OfflineRequest} request
 * @param {{number?: number | null}} [options] the number already typed, if any
 */
export function offlineScreen(account, request, { number = null } = {}) {
  const heading = h("h1", { text: t("offline.title") });
  const about = facts(
    fact("field.service", request.service),
    fact("field.operation", operationText(request.operation), "operation"),
    fact("field.amount", request.amount, "amount"),
    fact("field.account", request.login),
  );
  if (!account.offlineKey) {
    show([heading, about, refusal(new CodeError("offline_unavailable")),
      link("nav.home", "#/", "button primary")]);
    return;
  }
  const status = h("div", { "aria-live": "polite" });
  const output = h("div", {});
  const reveal = async (typed) => {
    status.replaceChildren();
    try {
      const code = await offlineCode({ key: account.offlineKey, challengeId: request.challengeId,
        number: request.numberMatching ? typed : null });
      output.replaceChildren(
        h("p", { text: t("offline.type_it") }),
        h("p", { class: "response", id: "qg-offline-code", "data-code": code,
          text: code.replace(/(\d{4})(?=\d)/g, "$1 ") }),
        h("p", { class: "note", text: t("offline.once") }));
    } catch (error) {
      status.replaceChildren(refusal(error));
    }
  };
  let form = null;
  if (request.numberMatching) {
    const input = h("input", { id: "qg-number", inputmode: "numeric", pattern: "[0-9]{2}",
      maxlength: 2, autocomplete: "off", value: number === null ? "" : String(number) });
    form = h("form", { class: "form", on: { submit: (event) => {
      event.preventDefault();
      if (!/^[1-9][0-9]$/.test(input.value)) {
        output.replaceChildren();
        status.replaceChildren(refusal(new CodeError("number_required")));
        return;
      }
      reveal(Number(input.value));
    } } }, h("label", { for: "qg-number", text: t("approve.number") }), input, status,
    h("button", { type: "submit", class: "primary", text: t("offline.show") }));
  }
  show([
    heading,
    h("div", { class: "notice" }, h("h2", { text: t("offline.no_network") }),
      h("p", { text: t("offline.about") })),
    h("p", { class: "verified", text: t("code.verified") }),
    about,
    form ?? status,
    output,
    link("nav.home", "#/", "button secondary"),
  ]);
  if (!request.numberMatching) reveal(null);
}
