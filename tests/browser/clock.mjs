// Opens the clock example in headless Chromium and reports what the page saw.
//
// Usage: node tests/browser/clock.mjs <url> <screenshot.png> [chromium]
// Prints one JSON line {ticks, opens, text, state} and exits 0 once the page has seen the
// stream end and reconnect; exits 1 with the same summary on stderr if it does not in time.

import { overallDeadline, report, waitFor, withPage } from "./launch.mjs";

const [url, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node clock.mjs <url> <screenshot.png> [chromium]");
  process.exit(2);
}

// Enough for the server's 10 s stream, the 1 s retry and a few ticks after it.
const WAIT_MS = 25_000;
const WANT_OPENS = 2;
const WANT_TICKS = 12;

// A last resort, inside the caller's own kill timeout.
overallDeadline("clock.mjs", 50_000);

await withPage(url, screenshot, executablePath, async (page) => {
  const done = await waitFor(
    "clock.mjs",
    page,
    ([opens, ticks]) => window.opens >= opens && window.ticks.length >= ticks,
    [WANT_OPENS, WANT_TICKS],
    WAIT_MS,
  );
  const summary = await page.evaluate(() => ({
    ticks: window.ticks.map((tick) => tick.seq),
    opens: window.opens,
    text: document.getElementById("time").textContent,
    state: document.getElementById("state").textContent,
  }));
  report(done, summary);
});
