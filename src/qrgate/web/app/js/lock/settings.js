// The app lock's settings (#/lock): set a PIN for this phone's accounts, add the
// fingerprint or face (the platform authenticator), turn the lock off. The PIN comes first
// and stays: when a changed fingerprint no longer unlocks, the PIN still does.
import { CodeError } from "../shared/errors.js";
import { t } from "../shared/i18n.js";
import {
  accountLock, addWebauthn, platformAuthenticatorAvailable, setPin, turnOff,
} from "../shared/lock.js";
import { ACCOUNTS, all } from "../shared/store.js";
import { button, fact, facts, h, link, refusal, show } from "../shared/ui.js";
import { PIN_PATTERN, pinField } from "./unlock.js";

function checkedPin(field, repeat = null) {
  if (!PIN_PATTERN.test(field.value)) throw new CodeError("pin_too_short");
  if (repeat && repeat.value !== field.value) throw new CodeError("pin_mismatch");
  return field.value;
}

/** Run `work` for every account, showing the first refusal; then show the screen again. */
function acting(status, controls, work) {
  return async () => {
    for (const control of controls) control.disabled = true;
    status.replaceChildren(h("p", { class: "loading", text: t("lock.working") }));
    try {
      await work();
    } catch (error) {
      status.replaceChildren(refusal(error));
      for (const control of controls) control.disabled = false;
      return;
    }
    await lockScreen(t("lock.saved"));
  };
}

export async function lockScreen(notice = "") {
  const accounts = await all(ACCOUNTS);
  const status = h("div", { "aria-live": "polite" },
    notice ? h("p", { class: "result approved", text: notice }) : null);
  const heading = [h("h1", { text: t("lock.title") }), h("p", { text: t("lock.intro") })];
  if (!accounts.length) {
    show([...heading, h("p", { class: "empty", text: t("lock.no_accounts") }),
      link("nav.home", "#/", "button primary")]);
    return;
  }
  const locks = accounts.map((account) => accountLock(account.deviceId));
  const pinSet = locks.some((lock) => lock.pin);
  const webauthnSet = locks.length > 0 && locks.every((lock) => lock.credentialId);
  if (!pinSet) {
    const pin = pinField("qg-new-pin");
    const repeat = pinField("qg-repeat-pin");
    const save = button("lock.set_pin", () => {}, "primary");
    save.addEventListener("click", acting(status, [save], async () => {
      const chosen = checkedPin(pin, repeat);
      for (const account of accounts) await setPin(account, chosen);
    }));
    show([...heading,
      facts(fact("lock.state", t("lock.off"))),
      h("label", { for: "qg-new-pin", text: t("lock.new_pin") }), pin,
      h("label", { for: "qg-repeat-pin", text: t("lock.repeat_pin") }), repeat,
      status, save]);
    return;
  }
  const pin = pinField("qg-pin");
  const controls = [];
  const addFingerprint = button("lock.add_webauthn", () => {}, "primary");
  addFingerprint.addEventListener("click", acting(status, controls, async () => {
    const current = checkedPin(pin);
    for (const account of accounts) {
      // An account added after the PIN was set gets it now (it has no lock yet).
      if (!accountLock(account.deviceId).pin) await setPin(account, current);
      if (!accountLock(account.deviceId).credentialId) await addWebauthn(account, current);
    }
  }));
  const off = button("lock.turn_off", () => {}, "danger");
  off.addEventListener("click", acting(status, controls, async () => {
    const current = checkedPin(pin);
    for (const account of accounts) {
      if (accountLock(account.deviceId).pin) await turnOff(account, current);
    }
  }));
  controls.push(addFingerprint, off);
  const available = await platformAuthenticatorAvailable();
  show([...heading,
    facts(fact("lock.state", t("lock.pin_on")),
      fact("lock.webauthn", t(webauthnSet ? "lock.webauthn_on" : "lock.webauthn_off"))),
    h("label", { for: "qg-pin", text: t("lock.current_pin") }), pin,
    status,
    !webauthnSet && available ? addFingerprint : null,
    !webauthnSet && !available ? h("p", { class: "note", text: t("lock.no_webauthn") }) : null,
    off]);
}
