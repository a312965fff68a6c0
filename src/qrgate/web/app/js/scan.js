// The scan screen: the camera, with a picked photo and pasted text as fallbacks. Whatever
// is read goes to the screen of its scheme (schemes.js), which verifies it before showing
// anything.
import { CodeError } from "./shared/errors.js";
import { cameraProblem, readFile, scan } from "./shared/camera.js";
import { peekCodeType } from "./shared/codes.js";
import { t } from "./shared/i18n.js";
import { h, refusal, show } from "./shared/ui.js";
import { screenFor } from "./schemes.js";

const RETRY_MS = 2500;

/** Open the screen for a code's text, or say why it is not one. */
export async function open(text, status) {
  const trimmed = text.trim();
  let screen;
  try {
    screen = screenFor(peekCodeType(trimmed));
  } catch (error) {
    status.replaceChildren(refusal(error));
    return false;
  }
  if (!screen) {
    status.replaceChildren(refusal(new CodeError("wrong_code_type")));
    return false;
  }
  await screen(trimmed);
  return true;
}

export async function scanScreen() {
  const video = h("video", { class: "viewfinder", "aria-label": t("scan.camera") });
  const status = h("div", { class: "status", "aria-live": "polite" },
    h("p", { text: t("scan.aim") }));
  const file = h("input", { type: "file", accept: "image/*", id: "qg-file" });
  const pasted = h("textarea", { id: "qg-paste", rows: 3, spellcheck: "false",
    autocapitalize: "characters", placeholder: "QG1:…" });
  let stopCamera = () => {};
  const restart = async () => {
    try {
      stopCamera = await scan(video, async (text) => {
        // Keep the refusal readable before the camera looks again.
        if (!(await open(text, status))) setTimeout(restart, RETRY_MS);
      });
    } catch (error) {
      video.hidden = true;
      status.replaceChildren(h("p", { class: "error", role: "alert", text: t(cameraProblem(error)) }));
    }
  };
  file.addEventListener("change", async () => {
    const [picked] = file.files;
    if (!picked) return;
    const text = await readFile(picked);
    if (text === null) status.replaceChildren(refusal(new CodeError("no_code_in_image")));
    else if (await open(text, status)) stopCamera();
    file.value = "";
  });
  const paste = h("form", { class: "paste", on: { submit: async (event) => {
    event.preventDefault();
    if (await open(pasted.value, status)) stopCamera();
  } } }, h("label", { for: "qg-paste", text: t("scan.paste") }), pasted,
  h("button", { type: "submit", class: "secondary", text: t("scan.open") }));
  show([
    h("h1", { text: t("scan.title") }),
    video,
    status,
    h("div", { class: "fallbacks" },
      h("label", { for: "qg-file", class: "button secondary", text: t("scan.photo") }), file,
      h("details", {}, h("summary", { text: t("scan.paste_title") }), paste)),
  ], () => stopCamera());
  await restart();
}
