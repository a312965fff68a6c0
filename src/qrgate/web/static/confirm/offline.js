// "Phone offline?": when the phone cannot reach the server, the qrgate app shows an 8-digit
// code made from the QR it scanned (and the number shown here, when there is one); typed
// here, it is sent to .../offline-code with this browser's binding (the cookie), and the
// server approves as if the phone had. The result arrives as any other: pushed, or read
// again at once. The form shows only while the challenge waits for a phone; it follows the
// status that view.js renders (#qg-status's data-state), so no other module calls it.

import { challengePath, HttpError } from "./api.js";
import { clear, messageFor, say } from "./i18n.js";
import { page } from "./state.js";
import { refresh } from "./stream.js";
import { view } from "./view.js";

const CODE = /^[0-9]{8}$/;
const WAITING = new Set(["pending", "scanned"]);

function element(tag, attributes = {}) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

const style = element("link", { rel: "stylesheet", href: "../static/confirm/offline.css" });
document.head.append(style);

const box = element("details", { id: "qg-offline", class: "get-app" });
const summary = element("summary");
const about = element("p");
const form = element("form", { class: "offline-form", novalidate: "" });
const label = element("label", { for: "qg-offline-code", class: "visually-hidden" });
const input = element("input", { id: "qg-offline-code", inputmode: "numeric",
  autocomplete: "one-time-code", maxlength: "9", spellcheck: "false" });
const button = element("button", { type: "submit" });
const message = element("p", { id: "qg-offline-message", class: "offline-message",
  role: "alert" });
message.hidden = true;
form.append(label, input, button);
box.append(summary, about, form, message);
box.hidden = true;
say(summary, "offline.summary");
say(about, "offline.about");
say(label, "offline.label");
say(button, "offline.submit");
// Beside the number: both are what a person reads off the phone's screen.
view.countdown.before(box);

function follow() {
  const challenge = page.challenge;
  box.hidden = page.finished || !challenge || challenge.verifier !== "qr" ||
    !WAITING.has(view.status.dataset.state);
}

new MutationObserver(follow).observe(view.status, { attributes: true,
  attributeFilter: ["data-state"] });

async function send(code) {
  let response;
  try {
    response = await fetch(`${challengePath}/offline-code`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code }),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    say(message, "offline.not_sent");
    return;
  }
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // Not a problem document: the status is all there is.
    }
    const error = new HttpError(response.status, problem);
    const code = error.code || `HTTP ${error.status}`;
    say(message, ...messageFor(`error.${code}`, "error.other", code));
    return;
  }
  clear(message);
  input.value = "";
  refresh();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = input.value.replace(/\s+/g, "");
  if (!CODE.test(code)) {
    say(message, "offline.eight_digits");
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    await send(code);
  } finally {
    button.disabled = false;
  }
});
