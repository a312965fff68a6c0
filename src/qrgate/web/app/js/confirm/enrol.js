// Scheme C registration: bind this phone to an account by scanning the enrolment QR. The
// code is verified first; the phone then makes its own non-extractable ES256 key, proves
// it holds it (the request is signed with it) and confirms with the user's password or the
// one-time code shown beside the QR.
import { CodeError } from "../shared/errors.js";
import { API_ROOT, isThisServer, signedCall } from "../shared/api.js";
import { readEnrolCode } from "./codes.js";
import { importOfflineKey } from "./offline-code.js";
import { fromB64u } from "../shared/bytes.js";
import { generateDeviceKey, publicKeyB64u } from "../shared/device.js";
import { formatTime, t } from "../shared/i18n.js";
import { readVerified } from "../shared/server-keys.js";
import { ACCOUNTS, put } from "../shared/store.js";
import { fact, facts, h, link, refusal, show } from "../shared/ui.js";

export function refusedScreen(titleKey, error) {
  show([h("h1", { text: t(titleKey) }), refusal(error), link("scan.again", "#/scan", "button primary")]);
}

export async function enrolScreen(text) {
  let code;
  try {
    code = await readVerified(readEnrolCode, text);
    if (!isThisServer(code.serverUrl)) throw new CodeError("other_server");
  } catch (error) {
    refusedScreen("enrol.title", error);
    return;
  }
  const password = h("input", { id: "qg-password", type: "password", autocomplete: "current-password" });
  const oneTime = h("input", { id: "qg-once", inputmode: "numeric", pattern: "[0-9]{8}",
    maxlength: 8, autocomplete: "one-time-code" });
  const name = h("input", { id: "qg-name", maxlength: 100, value: t("enrol.default_name") });
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary", text: t("enrol.bind") });
  const form = h("form", { class: "form", on: { submit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.replaceChildren();
    try {
      await bind(text, code, { password: password.value, confirmCode: oneTime.value.trim(),
        name: name.value.trim() });
    } catch (error) {
      status.replaceChildren(refusal(error));
      submit.disabled = false;
    }
  } } },
  h("label", { for: "qg-password", text: t("enrol.password") }), password,
  h("p", { class: "or", text: t("enrol.or") }),
  h("label", { for: "qg-once", text: t("enrol.once") }), oneTime,
  h("label", { for: "qg-name", text: t("enrol.name") }), name,
  status, submit);
  show([
    h("h1", { text: t("enrol.title") }),
    h("p", { class: "verified", text: t("code.verified") }),
    facts(fact("field.account", code.login), fact("field.service", code.issuer),
      fact("field.server", code.serverUrl), fact("field.valid_until", formatTime(code.expiresAt))),
    form,
  ]);
}

async function bind(text, code, { password, confirmCode, name }) {
  const fields = { code: text, name };
  if (confirmCode) fields.confirm_code = confirmCode;
  else fields.password = password;
  await enrolDevice(fields);
}

/** Make a device key, bind it with `fields` (an enrolment code and its confirmation, or an
 * access pass: access-pass.js), keep the account and say so; `noteKey`: one line more. */
export async function enrolDevice(fields, noteKey = null) {
  const keys = await generateDeviceKey();
  const body = { ...fields, public_key: await publicKeyB64u(keys.publicKey) };
  const result = await signedCall({ deviceId: "new", keys }, "POST", "/v1/devices", body);
  const account = {
    deviceId: result.device_id, login: result.login, name: result.name, orgId: result.org_id,
    // The app talks to its own server only (isThisServer), so this is the enrolment's too.
    issuer: result.issuer, serverUrl: API_ROOT.href, keys, createdAt: result.created_at,
    // Offline approval (offline.js): a non-extractable HMAC key; the bytes are not kept.
    offlineKey: result.offline_secret ? await importOfflineKey(fromB64u(result.offline_secret))
      : null,
  };
  await put(ACCOUNTS, account);
  show([
    h("h1", { text: t("enrol.done_title") }),
    h("p", { class: "result approved", text: t("enrol.done", { login: account.login }) }),
    noteKey ? h("p", { class: "note", text: t(noteKey) }) : null,
    facts(fact("field.device", account.name), fact("field.device_id", account.deviceId)),
    link("home.scan", "#/scan", "button primary"),
    link("nav.home", "#/"),
  ]);
}
