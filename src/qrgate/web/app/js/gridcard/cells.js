// Scheme A on the phone: which of the codes in view is the cell the server asked for. A
// cell holds its card's serial and its position in clear (qrgate.core.gridcard), so the
// app can pick the asked one out of a whole card, or a whole printed page, and send only
// it: the server counts any other cell as a failed attempt.

const SYMBOL = "[0-9A-HJKMNP-TV-Z]"; // Crockford's Base32
const CELL = new RegExp(`^QGA1:(${SYMBOL}{10}):([A-Z][1-9]):${SYMBOL}{24}$`);

/** A serial as its cells hold it, from the form printed on the card ("ABCDE-FGHJK"). */
export function compactSerial(serial) {
  return serial.replace(/-/g, "");
}

/** A serial as printed on the card, for people. */
export function formatSerial(serial) {
  return `${serial.slice(0, 5)}-${serial.slice(5)}`;
}

/**
 * The asked cell among the texts of one frame or photo; else the serial of another card
 * seen there (an old card, a colleague's), so the screen can say which card to use.
 * @param {string[]} texts
 * @param {{serial: string, position: string}} asked the attempt's card (as printed) and position
 * @returns {{cell: string | null, otherCard: string | null}}
 */
export function lookFor(texts, { serial, position }) {
  const wanted = compactSerial(serial);
  let otherCard = null;
  for (const text of texts) {
    const match = CELL.exec(text);
    if (!match) continue;
    if (match[1] !== wanted) otherCard = match[1];
    else if (match[2] === position) return { cell: text, otherCard: null };
  }
  return { cell: null, otherCard };
}
