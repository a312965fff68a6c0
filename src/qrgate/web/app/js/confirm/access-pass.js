// Lost phone: bind this phone to an account with a temporary access pass instead of an
// enrolment QR. The service (or an operator) gives the user the pass once, by a way they
// trust; the user types it here. As with a scanned enrolment, the phone makes its own
// non-extractable ES256 key and signs the request with it; the pass is sent once and never
// kept. The server may unbind the account's other phones (the lost one) as it binds this one.
import { t } from "../shared/i18n.js";
import { h, link, refusal, show } from "../shared/ui.js";
import { enrolDevice } from "./enrol.js";

/** What a person may type: 16 Crockford base32 characters, any case, spaces or dashes. */
const PASS_TEXT = /^[0-9A-Za-z -]{16,40}$/;

export function accessPassScreen() {
  const pass = h("input", { id: "qg-pass", autocomplete: "off", autocapitalize: "characters",
    spellcheck: "false", maxlength: 40, placeholder: "XXXX-XXXX-XXXX-XXXX", required: true });
  const name = h("input", { id: "qg-name", maxlength: 100, value: t("enrol.default_name") });
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", text: t("enrol.bind") });
  const form = h("form", { class: "form", on: { submit: async (event) => {
    event.preventDefault();
    status.replaceChildren();
    const typed = pass.value.trim();
    if (!PASS_TEXT.test(typed)) {
      status.replaceChildren(refusal({ code: "access_pass_not_found", message: "" }));
      return;
    }
    submit.disabled = true;
    try {
      await bindWithPass(typed, name.value.trim());
    } catch (error) {
      status.replaceChildren(refusal(error));
      submit.disabled = false;
    }
  } } },
  h("label", { for: "qg-pass", text: t("pass.label") }), pass,
  h("label", { for: "qg-name", text: t("enrol.name") }), name,
  status, submit);
  show([
    h("h1", { text: t("pass.title") }),
    h("p", { text: t("pass.intro") }),
    form,
    link("nav.home", "#/"),
  ]);
}

/** Bind with the pass and keep the account as a scanned enrolment would. */
export function bindWithPass(typed, name) {
  return enrolDevice({ access_pass: typed, name }, "pass.replaced");
}
