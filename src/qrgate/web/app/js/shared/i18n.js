// Message catalogs (i18n/<lang>.json, flat key -> text with {name} placeholders). The
// language follows the browser until the user picks one, and the pick is remembered.
/** @typedef {"en" | "zh-CN"} Lang */

export const LANGS = /** @type {const} */ (["en", "zh-CN"]);
const STORAGE_KEY = "qrgate-lang";

/** @type {Record<string, string>} */
let messages = {};
/** @type {Record<string, string>} */
let fallback = {};
/** @type {Lang} */
let current = "en";

/** @returns {Lang} */
export function preferredLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "zh-CN") return saved;
  const wanted = navigator.languages && navigator.languages.length
    ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

async function load(lang) {
  const response = await fetch(new URL(`../../i18n/${lang}.json`, import.meta.url));
  if (!response.ok) throw new Error(`catalog ${lang}: HTTP ${response.status}`);
  return response.json();
}

/** @param {Lang} lang @param {boolean} remember */
export async function setLanguage(lang, remember = false) {
  if (!Object.keys(fallback).length) fallback = await load("en");
  messages = lang === "en" ? fallback : await load(lang);
  current = lang;
  document.documentElement.lang = lang;
  if (remember) localStorage.setItem(STORAGE_KEY, lang);
}

export function language() {
  return current;
}

/** The message for `key`, its {placeholders} filled; a missing key shows itself, so a gap
 * in a catalog is visible instead of silently blank. */
export function t(key, params = {}) {
  const text = messages[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
}

/** An operation's name: the catalog's for the common ones, else the relying party's own. */
export function operationText(operation) {
  const key = `operation.${operation}`;
  return key in messages || key in fallback ? t(key) : operation;
}

/** A person's message for a refusal code from the server or the codec. */
export function errorText(code, detail = "") {
  const key = `error.${code}`;
  if (code !== "unknown" && (key in messages || key in fallback)) return t(key);
  return t("error.unknown", { code: code || "?", detail });
}

/** Fill every [data-i18n] element under `root` (static markup in index.html). */
export function translate(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
}

/** Format Unix seconds as a local date and time in the current language. */
export function formatTime(seconds) {
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" })
    .format(new Date(seconds * 1000));
}
