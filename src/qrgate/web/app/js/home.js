// The first screen: this phone's accounts (scheme C) and tokens (scheme E).
import { DEVICES, TOKEN_IDS, forget, lost } from "./shared/evicted.js";
import { formatTime, t } from "./shared/i18n.js";
import { ACCOUNTS, TOKENS, all, persist } from "./shared/store.js";
import { button, h, link, show } from "./shared/ui.js";

function entry(href, title, subtitle) {
  return h("li", {}, h("a", { class: "entry", href },
    h("span", { class: "entry-title", text: title }),
    h("span", { class: "entry-sub", text: subtitle })));
}

export async function homeScreen() {
  const byLogin = (a, b) => a.login.localeCompare(b.login) || a.issuer.localeCompare(b.issuer);
  const [accounts, tokens] = (await Promise.all([all(ACCOUNTS), all(TOKENS)]))
    .map((entries) => entries.sort(byLogin));
  const items = [
    ...accounts.map((account) => entry(`#/account/${encodeURIComponent(account.deviceId)}`,
      account.login, t("home.account", { name: account.name, issuer: account.issuer,
        since: formatTime(account.createdAt) }))),
    ...tokens.map((token) => entry(`#/token/${encodeURIComponent(token.tokenId)}`,
      token.login, t("home.token", { issuer: token.issuer, since: formatTime(token.createdAt) }))),
  ];
  const storage = h("p", { class: "note", hidden: true, text: t("home.storage_refused") });
  show([
    h("h1", { text: t("home.title") }),
    evictionNotice(lost(DEVICES, accounts.map((account) => account.deviceId)),
      lost(TOKEN_IDS, tokens.map((token) => token.tokenId))),
    items.length
      ? h("ul", { class: "entries" }, ...items)
      : h("p", { class: "empty", text: t("home.empty") }),
    link("home.scan", "#/scan", "button primary"),
    link("home.gridcard", "#/gridcard"),
    accounts.length ? link("home.lock", "#/lock") : null,
    link("home.access_pass", "#/access-pass"),
    storage,
  ]);
  // Keys live in this browser's storage; if it may evict them, the user must know.
  if (items.length && !(await persist())) storage.hidden = false;
}

/** The browser deleted keys of accounts or tokens this phone had: say so, and how to get
 * them back. */
function evictionNotice(devices, tokens) {
  const count = devices.length + tokens.length;
  if (!count) return null;
  const notice = h("div", { class: "notice evicted", role: "alert" },
    h("h2", { text: t("home.evicted_title") }),
    h("p", { text: t("home.evicted", { count }) }),
    h("p", { text: t("home.evicted_how") }),
    button("home.evicted_ok", () => {
      forget(DEVICES, devices);
      forget(TOKEN_IDS, tokens);
      notice.remove();
    }, "secondary"));
  return notice;
}
