// One scheme C account on this phone: its device as the server knows it, and unbinding.
import { signedCall } from "../shared/api.js";
import { formatTime, t } from "../shared/i18n.js";
import { DEVICES, forget } from "../shared/evicted.js";
import { ACCOUNTS, get, remove } from "../shared/store.js";
import { button, fact, facts, h, link, refusal, show } from "../shared/ui.js";

export async function accountScreen(deviceId) {
  const account = await get(ACCOUNTS, deviceId);
  if (!account) {
    location.hash = "#/";
    return;
  }
  const status = h("div", { "aria-live": "polite" });
  const serverView = h("dd", { class: "device-status", text: "…" });
  const unbind = button("account.unbind", async () => {
    if (!confirm(t("account.unbind_confirm", { login: account.login }))) return;
    try {
      await signedCall(account, "DELETE", "/v1/devices/me");
    } catch (error) {
      // Unbound or removed elsewhere already: the server will not know this key again.
      if (!["device_unbound", "unknown_device"].includes(error.code)) {
        status.replaceChildren(refusal(error));
        return;
      }
    }
    await remove(ACCOUNTS, account.deviceId);
    forget(DEVICES, [account.deviceId]);
    location.hash = "#/";
  }, "danger");
  show([
    h("h1", { text: account.login }),
    facts(fact("field.service", account.issuer), fact("field.device", account.name),
      fact("field.device_id", account.deviceId), fact("field.since", formatTime(account.createdAt))),
    h("dl", { class: "facts" }, h("dt", { text: t("account.server_status") }), serverView),
    link("nav.history", "#/history"),
    status,
    unbind,
  ]);
  try {
    const device = await signedCall(account, "GET", "/v1/devices/me");
    serverView.textContent = t(`device.${device.status}`);
  } catch (error) {
    serverView.replaceChildren(refusal(error));
  }
}
