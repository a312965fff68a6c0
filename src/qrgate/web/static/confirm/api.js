// The page's calls to its challenge (/v1/confirm/challenges/{id}/...): one fetch that turns
// a refusal into an HttpError carrying the problem document's code, and that reads the
// server's clock off every answer, so the countdown and the code rotation follow the
// server rather than a computer clock that may be minutes off.

const challengeId = document.getElementById("qg").dataset.challengeId;
// Relative, so the page also works when qrgate is published under a path prefix.
export const challengePath =
  new URL(`../v1/confirm/challenges/${challengeId}`, location.href).pathname;
export const RETRY_MS = 2000; // before a call that failed in passing is made again

let clockSkewMs = 0; // the server's clock minus this computer's

export class HttpError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = problem && problem.code;
  }
}

// A network failure, a restarting server or a rate limit passes; any other refusal (no
// such challenge, another browser) is the server's last word.
export function isTransient(error) {
  return !(error instanceof HttpError) || error.status >= 500 || error.status === 429;
}

function noteServerTime(response) {
  // Date has whole seconds, so take the middle of the second and ignore small differences.
  const date = Date.parse(response.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const skew = date + 500 - Date.now();
  clockSkewMs = Math.abs(skew) > 1500 ? skew : 0;
}

export const serverNow = () => Date.now() + clockSkewMs;

export async function call(method, path, headers = {}) {
  const response = await fetch(challengePath + path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
  });
  noteServerTime(response);
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      // Not a problem document (a proxy's error page): the status is all we have.
    }
    throw new HttpError(response.status, problem);
  }
  return response.status === 204 ? null : response.json();
}
