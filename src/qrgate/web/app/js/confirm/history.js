// Scheme C history: what was asked of this phone's accounts, searchable (the server keeps
// it; GET /v1/devices/me/history).
import { signedCall } from "../shared/api.js";
import { formatTime, operationText, t } from "../shared/i18n.js";
import { ACCOUNTS, all } from "../shared/store.js";
import { h, refusal, show } from "../shared/ui.js";

function item(entry) {
  const scene = entry.scene || {};
  const amount = scene.amount ? ` ${scene.amount}${scene.currency ? ` ${scene.currency}` : ""}` : "";
  return h("li", { class: "history-item", "data-state": entry.state },
    h("span", { class: "entry-title", text: `${operationText(scene.operation || "")}${amount}` }),
    h("span", { class: `badge ${entry.state}`, text: t(`result.${entry.state}`) }),
    h("span", { class: "entry-sub",
      text: `${entry.login} · ${formatTime(entry.decided_at || entry.created_at)}` }));
}

export async function historyScreen() {
  const accounts = await all(ACCOUNTS);
  if (!accounts.length) {
    show([h("h1", { text: t("history.title") }), h("p", { class: "empty", text: t("history.none") })]);
    return;
  }
  const picker = h("select", { id: "qg-history-account", "aria-label": t("field.account") },
    ...accounts.map((account) => h("option", { value: account.deviceId,
      text: `${account.login} · ${account.issuer}` })));
  const search = h("input", { id: "qg-search", type: "search", placeholder: t("history.search"),
    "aria-label": t("history.search") });
  const list = h("ul", { class: "entries history" });
  const load = async () => {
    const account = accounts.find((one) => one.deviceId === picker.value);
    const query = search.value.trim();
    try {
      const result = await signedCall(account, "GET", "/v1/devices/me/history", null,
        query ? { q: query } : null);
      list.replaceChildren(...(result.items.length
        ? result.items.map(item) : [h("li", { class: "empty", text: t("history.empty") })]));
    } catch (error) {
      list.replaceChildren(h("li", {}, refusal(error)));
    }
  };
  let typing = 0;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(load, 300);
  });
  picker.addEventListener("change", load);
  show([h("h1", { text: t("history.title") }),
    accounts.length > 1 ? picker : null, search, list], () => clearTimeout(typing));
  picker.value = accounts[0].deviceId;
  await load();
}
