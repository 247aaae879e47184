// Opens the tokens example in headless Chromium and reports what the page saw: the whole
// answer, then `EventSource` closed by the server's 204 on its reconnect.
//
// Usage: node tests/browser/tokens.mjs <url> <screenshot.png> [chromium]
// Prints one JSON line {answer, opens, tokens, readyState, state} and exits 0 once
// `EventSource` is closed; exits 1 with the same summary on stderr if it is not in time.

import { overallDeadline, report, waitFor, withPage } from "./launch.mjs";

const [url, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node tokens.mjs <url> <screenshot.png> [chromium]");
  process.exit(2);
}

// The answer takes well under a second at the test's token rate, then the 1 s retry.
const WAIT_MS = 20_000;
overallDeadline("tokens.mjs", 45_000);

await withPage(url, screenshot, executablePath, async (page) => {
  const done = await waitFor(
    "tokens.mjs",
    page,
    () => window.source.readyState === EventSource.CLOSED,
    null,
    WAIT_MS,
  );
  const summary = await page.evaluate(() => ({
    answer: document.getElementById("answer").textContent,
    opens: window.opens,
    tokens: window.tokens,
    readyState: window.source.readyState,
    state: document.getElementById("state").textContent,
  }));
  report(done, summary);
});
