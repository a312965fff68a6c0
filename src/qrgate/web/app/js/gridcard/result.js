// How a grid-card sign-in ends on the phone: signed in, or why not.
import { t } from "../shared/i18n.js";
import { fact, facts, h, link, refusal, show } from "../shared/ui.js";

/** @param {import("./attempt.js").Attempt} attempt as the server answered it */
export function signedInScreen(attempt) {
  // Started by a relying party, the sign-in goes on in its website, not here.
  const done = attempt.application ? "gridcard.done_website" : "gridcard.done";
  show([
    h("h1", { text: t("gridcard.done_title") }),
    h("p", { class: "result approved", "data-state": attempt.state,
      text: t(done, { organisation: attempt.organisation }) }),
    facts(
      fact("field.account", attempt.login),
      fact("field.service",
        [attempt.organisation, attempt.application].filter(Boolean).join(" · ")),
      fact("field.cell", t("gridcard.cell_of_card", { position: attempt.position,
        serial: attempt.serial })),
    ),
    link("nav.home", "#/", "button primary"),
  ]);
}

/** @param {{code?: string}} error the refusal @param {string} again where to start again */
export function failedScreen(error, again) {
  show([
    h("h1", { text: t("gridcard.failed_title") }),
    refusal(error),
    link("gridcard.again", again, "button primary"),
    link("nav.home", "#/"),
  ]);
}
