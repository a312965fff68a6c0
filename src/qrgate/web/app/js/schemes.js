// Which screen a scanned code opens, by its code type. Each scheme adds its codes here and
// keeps its screens in its own folder.
import { CodeType } from "./shared/codes.js";
import { approveScreen } from "./confirm/approve.js";
import { enrolScreen } from "./confirm/enrol.js";
import { joinScreen } from "./gridcard/join.js";
import { chainScreen } from "./txsign/chain.js";
import { signScreen } from "./txsign/sign.js";
import { tokenEnrolScreen } from "./txsign/token.js";

const SCREENS = new Map([
  [CodeType.CONFIRM, approveScreen],
  [CodeType.ENROL, enrolScreen],
  [CodeType.TOKEN_ENROL, tokenEnrolScreen],
  [CodeType.TXSIGN_CHALLENGE, signScreen],
  [CodeType.TXSIGN_CHAIN, chainScreen],
  [CodeType.GRIDCARD, joinScreen],
]);

/** @returns {((text: string) => Promise<void>) | undefined} */
export function screenFor(codeType) {
  return SCREENS.get(codeType);
}
