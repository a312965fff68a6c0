// Scheme A in the app alone (the patent's flow), step 1: the account and its password. The
// server answers with the position of the user's card to scan, and cell.js reads it.
import { t } from "../shared/i18n.js";
import { h, link, refusal, show } from "../shared/ui.js";
import { signIn } from "./attempt.js";
import { cellScreen } from "./cell.js";

// The organisation's short name is no secret and tedious to type on a phone: the last one
// used is offered again. The login and the password are never kept.
const LAST_ORGANISATION = "qrgate-gridcard-org";

function field(id, labelKey, props = {}) {
  return [h("label", { for: id, text: t(labelKey) }),
    h("input", { id, required: true, autocapitalize: "none", spellcheck: "false", ...props })];
}

export function gridcardScreen() {
  const [orgLabel, organisation] = field("qg-org", "gridcard.organisation",
    { value: localStorage.getItem(LAST_ORGANISATION) || "", autocomplete: "off" });
  const [loginLabel, login] = field("qg-login", "gridcard.login", { autocomplete: "username" });
  const [passwordLabel, password] = field("qg-password", "enrol.password",
    { type: "password", autocomplete: "current-password" });
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", text: t("gridcard.continue") });
  const form = h("form", { class: "form", on: { submit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.replaceChildren();
    const account = { organisation: organisation.value.trim().toLowerCase(),
      login: login.value.trim(), password: password.value };
    try {
      const attempt = await signIn(account);
      localStorage.setItem(LAST_ORGANISATION, account.organisation);
      cellScreen(attempt, { about: [], again: "#/gridcard" });
    } catch (error) {
      status.replaceChildren(refusal(error));
      submit.disabled = false;
    }
  } } }, orgLabel, organisation, loginLabel, login, passwordLabel, password, status, submit);
  show([
    h("h1", { text: t("gridcard.title") }),
    h("p", { text: t("gridcard.intro") }),
    form,
    link("nav.home", "#/"),
  ]);
}
