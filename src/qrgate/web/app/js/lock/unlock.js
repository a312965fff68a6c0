// Unlocking an approval: when the service requires the app lock (the scan said
// `unlock_required`), the app asks for the fingerprint or face at once, with the PIN beside
// it as the fallback, and attaches the proof over this very decision.
import { CodeError } from "../shared/errors.js";
import { t } from "../shared/i18n.js";
import { accountLock, decisionMessage, pinUnlock, webauthnUnlock } from "../shared/lock.js";
import { button, h, link, refusal } from "../shared/ui.js";

export const PIN_PATTERN = /^[0-9]{6,12}$/;

/** A PIN field: digits, hidden, Enter kept from submitting the form around it. */
export function pinField(id, onEnter = () => {}) {
  return h("input", { id, type: "password", inputmode: "numeric", autocomplete: "off",
    maxlength: 12, on: { keydown: (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        onEnter();
      }
    } } });
}

/**
 * Ask the user to unlock, in `container`. Resolves to the `unlock` object, or to null
 * when this account has no lock on this phone (the server then says whether it needs one);
 * rejects with CodeError `unlock_cancelled` when the user gives up.
 */
function askUnlock(account, message, container) {
  const lock = accountLock(account.deviceId);
  if (!lock.pin && !lock.credentialId) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const aborter = new AbortController();
    const problem = h("div", { "aria-live": "polite" });
    const finish = (settle) => {
      aborter.abort();
      container.replaceChildren();
      settle();
    };
    const usePin = async () => {
      if (!PIN_PATTERN.test(pin.value)) {
        problem.replaceChildren(refusal(new CodeError("pin_too_short")));
        return;
      }
      const unlock = await pinUnlock(pin.value, account.deviceId, message);
      finish(() => resolve(unlock));
    };
    const useWebauthn = async () => {
      try {
        const unlock = await webauthnUnlock(lock.credentialId, message, aborter.signal);
        finish(() => resolve(unlock));
      } catch (error) {
        if (!aborter.signal.aborted) problem.replaceChildren(refusal(error));
      }
    };
    const pin = pinField("qg-unlock-pin", usePin);
    container.replaceChildren(h("div", { class: "unlock" },
      h("p", { class: "unlock-title", text: t("unlock.title") }),
      lock.credentialId ? button("unlock.webauthn", useWebauthn, "primary") : null,
      lock.pin ? h("label", { for: "qg-unlock-pin", text: t("unlock.pin") }) : null,
      lock.pin ? pin : null,
      lock.pin ? button("unlock.with_pin", usePin) : null,
      button("unlock.cancel", () => finish(() => reject(new CodeError("unlock_cancelled")))),
      problem));
    if (lock.credentialId) useWebauthn();
    else pin.focus();
  });
}

/**
 * The approve button's hook: when the scan said the service requires the lock, unlock and
 * put the proof in `body`. False when the user gave up (the reason is shown in `status`).
 */
export async function unlockApproval(account, context, body, status) {
  if (!context.unlock_required || body.decision !== "approve") return true;
  const message = await decisionMessage(context.challenge_id, "approve", body.number ?? null);
  try {
    const unlock = await askUnlock(account, message, status);
    if (unlock) body.unlock = unlock;
    return true;
  } catch (error) {
    status.replaceChildren(refusal(error));
    return false;
  }
}

/** Beside a refusal: where to set the lock up, when that is what the service asked. */
export function lockHint(error) {
  return error && error.code === "app_lock_required"
    ? link("lock.set_up", "#/lock") : "";
}
