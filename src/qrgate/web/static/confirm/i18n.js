// The page's texts in its reader's language. It picks the language (the one chosen on this
// page before, else the browser's), loads that catalog from static/i18n and puts its texts
// into the template's [data-i18n*] elements and into whatever the other modules say (say,
// clear). It remembers what was said where, so a change of language says it all again.

const LANGUAGES = ["en", "zh-CN"];
const LANGUAGE_KEY = "qrgate-confirm-language";
export const picker = document.getElementById("qg-lang"); // the language <select>

// The catalog in use (key -> text), null until one has loaded. No English copy ships in
// these modules: it would be a second confirm.en.json to keep in step. Until a catalog is
// in, the page shows the English of its HTML and renders nothing else; if none loads (the
// file lost in a deployment, a network failing mid-load), dynamic texts fall back to
// their keys as words (see t), so the page still shows the code and the result.
let messages = null;
const catalogs = new Map(); // language -> the promise of its catalog
// The elements whose text the page said, with what it said (a key and its values), so a
// change of language says them again.
const spoken = new Map();
let languageRequest = 0; // the newest choice: a slower, older load must not win

function savedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_KEY);
  } catch {
    return null; // storage disabled (a privacy setting): follow the browser
  }
}

export function saveLanguage(language) {
  try {
    localStorage.setItem(LANGUAGE_KEY, language);
  } catch {
    // Not remembered then; the choice still holds on this page.
  }
}

// The first of the browser's languages that the page has: any Chinese is zh-CN (the one
// Chinese catalog), any English en; a browser asking for neither gets English.
function browserLanguage() {
  const tags = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || ""];
  for (const tag of tags) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "zh") return "zh-CN";
    if (base === "en") return "en";
  }
  return "en";
}

export function preferredLanguage() {
  const saved = savedLanguage();
  return LANGUAGES.includes(saved) ? saved : browserLanguage();
}

function loadCatalog(language) {
  if (!catalogs.has(language)) {
    // Same origin and relative to the page, like its other files (connect-src 'self').
    const url = new URL(`../static/i18n/confirm.${language}.json`, location.href);
    const loading = fetch(url, { credentials: "same-origin" }).then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    });
    loading.catch(() => catalogs.delete(language)); // a later switch may try again
    catalogs.set(language, loading);
  }
  return catalogs.get(language);
}

// Use ``language``, or English when its catalog does not load; never fails.
export async function useLanguage(language) {
  const request = ++languageRequest;
  for (const candidate of new Set([language, "en"])) {
    let catalog;
    try {
      catalog = await loadCatalog(candidate);
    } catch {
      continue;
    }
    if (request !== languageRequest) return;
    messages = catalog;
    applyLanguage(candidate);
    return;
  }
}

function applyLanguage(language) {
  document.documentElement.lang = language;
  picker.value = language;
  for (const element of document.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of document.querySelectorAll("[data-i18n-alt]")) {
    element.alt = t(element.dataset.i18nAlt);
  }
  for (const element of document.querySelectorAll("[data-i18n-aria-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel));
  }
  // After the template's texts: an element the page has spoken for (the status) keeps
  // what it said, now in this language.
  for (const [element, [key, values]] of spoken) element.textContent = t(key, values);
}

// The text of ``key`` with its {name} placeholders filled from ``values``. Without a
// catalog: the key's last part and the values as words ("reason.denied_by_user" says
// "denied by user"), plain but still telling what happened.
function t(key, values = {}) {
  if (messages === null) {
    const words = key.slice(key.lastIndexOf(".") + 1).replace(/_/g, " ");
    return [words, ...Object.values(values)].join(" ");
  }
  const text = Object.hasOwn(messages, key) ? messages[key] : key;
  return text.replace(/\{(\w+)\}/g, (placeholder, name) =>
    Object.hasOwn(values, name) ? String(values[name]) : placeholder);
}

// Whether the catalog in use has a message for ``key`` (never, before one has loaded).
export function hasMessage(key) {
  return messages !== null && Object.hasOwn(messages, key);
}

// A code's own message when the catalog has one, else its family's ``otherKey`` message,
// which shows the code (a reason added to the server after the catalogs were written).
export function messageFor(key, otherKey, code) {
  return messages === null || Object.hasOwn(messages, key) ? [key, {}] : [otherKey, { code }];
}

// Show ``element`` saying ``key``, in this language and in any chosen later.
export function say(element, key, values = {}) {
  spoken.set(element, [key, values]);
  element.textContent = t(key, values);
  element.hidden = false;
}

export function clear(element) {
  spoken.delete(element);
  element.textContent = "";
  element.hidden = true;
}

// The relying party's own words (amount, content): shown as they are, in any language.
export function setText(element, text) {
  spoken.delete(element);
  element.textContent = text || "";
  element.hidden = !text;
}
