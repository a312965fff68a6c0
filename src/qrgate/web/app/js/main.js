// The qrgate phone app: routes between screens, language, offline shell.
import { homeScreen } from "./home.js";
import { lockScreen } from "./lock/settings.js";
import { scanScreen } from "./scan.js";
import { accountScreen } from "./confirm/account.js";
import { accessPassScreen } from "./confirm/access-pass.js";
import { historyScreen } from "./confirm/history.js";
import { gridcardScreen } from "./gridcard/sign-in.js";
import { tokenScreen } from "./txsign/token.js";
import { LANGS, preferredLanguage, setLanguage, translate } from "./shared/i18n.js";
import { registerServiceWorker } from "./shared/sw-register.js";

/** Hash routes: "#/name/argument". Codes never travel in the URL (history, screenshots). */
const ROUTES = {
  "": homeScreen,
  scan: scanScreen,
  history: historyScreen,
  account: accountScreen,
  "access-pass": accessPassScreen,
  gridcard: gridcardScreen,
  token: tokenScreen,
  lock: lockScreen,
};

function route() {
  const [, name = "", argument = ""] = location.hash.split("/");
  const screen = ROUTES[name] || homeScreen;
  for (const tab of document.querySelectorAll(".tabs a")) {
    const current = tab.getAttribute("href") === `#/${name}`;
    if (current) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  return screen(decodeURIComponent(argument));
}

async function start() {
  const select = /** @type {HTMLSelectElement} */ (document.getElementById("qg-lang"));
  await setLanguage(preferredLanguage());
  select.value = document.documentElement.lang;
  translate();
  select.addEventListener("change", async () => {
    if (!LANGS.includes(/** @type {any} */ (select.value))) return;
    await setLanguage(/** @type {any} */ (select.value), true);
    translate();
    await route();
  });
  window.addEventListener("hashchange", route);
  // A tap on a link to the route already shown starts it afresh (e.g. reopens the camera):
  // the hash does not change, so no hashchange comes. Screens reached from a route (a
  // scanned code's, a grid-card position) offer such links to begin again.
  document.addEventListener("click", (event) => {
    const target = /** @type {Element} */ (event.target);
    const anchor = target.closest && target.closest("a");
    if (anchor && anchor.getAttribute("href") === location.hash) route();
  });
  registerServiceWorker();
  await route();
}

start();
