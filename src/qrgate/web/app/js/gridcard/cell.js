// Scheme A, steps 2-4 on the phone: show the asked position large, read the card with the
// camera until that cell is in view, send that cell alone, and once the position's time
// has passed, ask for another position (claims 6-7: a bounded number of times).
import { CodeError } from "../shared/errors.js";
import { cameraProblem, readFileCodes, scanCodes } from "../shared/camera.js";
import { t } from "../shared/i18n.js";
import { button, countdown, h, link, refusal, show } from "../shared/ui.js";
import { answer, reissue } from "./attempt.js";
import { formatSerial, lookFor } from "./cells.js";
import { failedScreen, signedInScreen } from "./result.js";

/**
 * @typedef {object} Context
 * @property {Node[]} about what the screen shows above the position (a joined attempt's
 *   verified service), kept across reissues
 * @property {string} again where "Start again" leads
 */

/** @param {import("./attempt.js").Attempt} attempt @param {Context} context */
export function cellScreen(attempt, context) {
  const { position, serial } = attempt;
  const video = h("video", { class: "viewfinder card", "aria-label": t("scan.camera") });
  const status = h("div", { class: "status", "aria-live": "polite" },
    h("p", { text: t("gridcard.aim", { position }) }));
  const timeLeft = h("p", { class: "countdown" });
  const file = h("input", { type: "file", accept: "image/*", id: "qg-file" });
  const photo = h("label", { for: "qg-file", class: "button secondary",
    text: t("gridcard.photo") });
  let camera = null;
  let cameraWanted = true;
  // Also when the camera is still starting: it stops as soon as it has started.
  const stopCamera = () => {
    cameraWanted = false;
    if (camera) camera();
  };
  let stopCountdown = () => {};
  let sending = false;

  const timeUp = () => {
    stopCamera();
    stopCountdown();
    video.hidden = photo.hidden = timeLeft.hidden = true;
    status.replaceChildren(...reissueOffer(attempt, context, status));
  };
  const send = async (cell) => {
    sending = true;
    stopCamera();
    video.hidden = true;
    status.replaceChildren(h("p", { text: t("gridcard.checking", { position }) }));
    try {
      const done = await answer(attempt, cell);
      stopCountdown();
      signedInScreen({ ...attempt, ...done });
    } catch (error) {
      sending = false;
      if (error.code === "late_answer") timeUp();
      // The same cell again is safe: a repeated accepted answer is accepted again.
      else if (error.code === "network") {
        status.replaceChildren(refusal(error), button("gridcard.retry", () => send(cell)));
      } else {
        stopCountdown();
        failedScreen(error, context.again);
      }
    }
  };
  // Frames that hold only other cells are skipped; another card gets a word, once (each
  // frame saying it again would wipe whatever else the status says).
  let named = null;
  const pick = (texts) => {
    const { cell, otherCard } = lookFor(texts, attempt);
    if (!cell && otherCard && otherCard !== named) {
      named = otherCard;
      status.replaceChildren(h("p", { class: "note", text: t("gridcard.other_card",
        { seen: formatSerial(otherCard), serial }) }));
    }
    return cell;
  };
  file.addEventListener("change", async () => {
    const [picked] = file.files;
    file.value = "";
    if (!picked || sending) return;
    const { cell } = lookFor(await readFileCodes(picked), attempt);
    if (cell) send(cell);
    else status.replaceChildren(refusal(new CodeError("cell_not_in_image")));
  });

  show([
    h("h1", { text: t("gridcard.position_title") }),
    ...context.about,
    h("p", { class: "position", id: "qg-position", text: position }),
    h("p", { class: "card-serial", text: t("gridcard.on_card", { serial }) }),
    timeLeft,
    video,
    status,
    h("div", { class: "fallbacks" }, photo, file),
    link("sign.cancel", "#/"),
  ], () => {
    stopCamera();
    stopCountdown();
  });
  stopCountdown = countdown(timeLeft, attempt.position_expires_at, () => {
    if (!sending) timeUp();
  });
  scanCodes(video, pick, send).then((stop) => {
    camera = stop;
    if (!cameraWanted) stop();
  }, (error) => {
    if (!cameraWanted) return;
    video.hidden = true;
    status.replaceChildren(h("p", { class: "error", role: "alert",
      text: t(cameraProblem(error)) }));
  });
}

/** What the screen offers once the position's time has passed. */
function reissueOffer(attempt, context, status) {
  const passed = h("p", { class: "note",
    text: t("gridcard.time_up", { position: attempt.position }) });
  if (attempt.reissues_left < 1) {
    return [passed, refusal(new CodeError("reissue_limit")),
      link("gridcard.again", context.again, "button primary")];
  }
  const ask = button("gridcard.reissue", async () => {
    ask.disabled = true;
    try {
      cellScreen(await reissue(attempt), context);
    } catch (error) {
      // Asked a moment early by a phone whose clock runs ahead, or no network: ask again.
      if (error.code !== "window_open" && error.code !== "network") {
        failedScreen(error, context.again);
        return;
      }
      status.replaceChildren(passed, refusal(error), ask);
      ask.disabled = false;
    }
  }, "primary");
  return [passed, h("p", { text: t("gridcard.reissues_left", { count: attempt.reissues_left }) }),
    ask];
}
