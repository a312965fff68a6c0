// What the waiting page knows about its challenge, in one object the modules share: the
// status on screen, which code rotation is shown, and whether the wait is over. One copy,
// so the stream, the rotation and the rendering never work from different pictures.

// The states a challenge does not leave: the page shows the result and stops.
export const TERMINAL = new Set(["approved", "denied", "rejected", "expired"]);

export const page = {
  challenge: null, // the last status document, with pushed changes merged in
  knownSeq: 0, // the newest code rotation the page has heard of
  shownSeq: null, // the rotation whose image is on screen
  finished: false, // a final state or a problem ended the wait: no more timers or polls
};
