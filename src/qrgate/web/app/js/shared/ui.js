// Small DOM helpers shared by the screens: build elements without innerHTML (nothing from
// a code or the server is ever parsed as markup), swap the screen, show a refusal.
import { errorText, t } from "./i18n.js";

/**
 * @param {string} tag
 * @param {Record<string, any>} props  class, text, on: {event: handler}, or any attribute
 * @param {...(Node | string | null | false | undefined)} children
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "on") {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

const screenRoot = () => /** @type {HTMLElement} */ (document.getElementById("qg-screen"));

/** The screen's cleanup (e.g. stop the camera), run when the next screen replaces it. */
let leave = () => {};

/** Replace the screen; `onLeave` runs when another screen replaces this one. */
export function show(nodes, onLeave = () => {}) {
  leave();
  leave = onLeave;
  const root = screenRoot();
  root.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
  const heading = root.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

/** A labelled fact: <dt>label</dt><dd>value</dd>, skipped when the value is empty. */
export function fact(labelKey, value, className = "") {
  if (value === null || value === undefined || value === "") return [];
  return [h("dt", { text: t(labelKey) }), h("dd", { class: className, text: String(value) })];
}

export function facts(...pairs) {
  return h("dl", { class: "facts" }, ...pairs.flat());
}

/** A refusal, as a person reads it; the stable code stays in a data attribute. An error
 * without a code is a fault of the app itself: it goes to the console as well. */
export function refusal(error) {
  if (!error || !error.code) console.error(error);
  const code = (error && error.code) || (error && error.name) || "unknown";
  return h("p", { class: "error", role: "alert", "data-code": code,
    text: errorText(code, error && error.message) });
}

export function button(labelKey, onClick, className = "secondary") {
  return h("button", { type: "button", class: className, text: t(labelKey),
    on: { click: onClick } });
}

export function link(labelKey, href, className = "button secondary") {
  return h("a", { class: className, href, text: t(labelKey) });
}

/** A countdown in `element` to `expiresAt` (Unix seconds); calls `onEnd` at zero. */
export function countdown(element, expiresAt, onEnd = () => {}) {
  const tick = () => {
    const left = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
    element.textContent = t("time.left", { seconds: left });
    if (left === 0) {
      clearInterval(timer);
      onEnd();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}
