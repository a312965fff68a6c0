// Scheme A started by a relying party: its page shows a signed code (type GRIDCARD) beside
// the position. As every code, it is verified on the phone first (signature, type, expiry,
// shape) and a forged one sends nothing; the server then names the service and the
// position, and the card is read as in the app alone (cell.js).
import { hex } from "../shared/bytes.js";
import { CodeType, verifyCode } from "../shared/codes.js";
import { CodeError } from "../shared/errors.js";
import { t } from "../shared/i18n.js";
import { readVerified } from "../shared/server-keys.js";
import { fact, facts, h } from "../shared/ui.js";
import { refusedScreen } from "../confirm/enrol.js";
import { joinAttempt } from "./attempt.js";
import { cellScreen } from "./cell.js";

// As qrgate.core.gridcard_attempt.read_join_code: the code's id is the attempt's, claim 10
// its answer token.
const ATTEMPT_ID_BYTES = 16;
const TOKEN_CLAIM = 10;
const TOKEN_BYTES = 32;

async function readJoinCode(text, { keys, now }) {
  const code = await verifyCode(text, { keys, now, expectedType: CodeType.GRIDCARD });
  const token = code.claims.get(TOKEN_CLAIM);
  if (code.id.length !== ATTEMPT_ID_BYTES ||
      !(token instanceof Uint8Array && token.length === TOKEN_BYTES)) {
    throw new CodeError("malformed_code", "not a grid card attempt code");
  }
  return { attemptId: hex(code.id) };
}

export async function joinScreen(text) {
  let attempt;
  try {
    const code = await readVerified(readJoinCode, text);
    attempt = await joinAttempt(text);
    // What is shown must be the attempt the verified code names.
    if (attempt.attempt_id !== code.attemptId) throw new CodeError("field_mismatch");
  } catch (error) {
    refusedScreen("gridcard.title", error);
    return;
  }
  const { service, requester } = attempt;
  const about = [
    h("p", { class: "verified", text: t("code.verified") }),
    facts(
      fact("field.service",
        [service.organisation, service.application].filter(Boolean).join(" · ")),
      fact("field.origin", service.origin),
      fact("field.account", attempt.login),
      fact("field.browser", requester.user_agent),
      fact("field.place", [requester.place, requester.ip].filter(Boolean).join(" · ")),
    ),
  ];
  cellScreen(attempt, { about, again: "#/scan" });
}
