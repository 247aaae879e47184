// Opens the compressed-stream page in headless Chromium and reports what it saw.
//
// Usage: node tests/browser/compressed.mjs <url> <screenshot.png> [chromium]
// The server sends each event only after the page has acknowledged the one before, so the
// page sees them all only if each arrived alone, decoded, while the stream stayed open.
// Prints one JSON line {events, opens, done} and exits 0 once the page has the last event;
// exits 1 with the same summary on stderr if it does not in time.

import { overallDeadline, report, waitFor, withPage } from "./launch.mjs";

const [url, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node compressed.mjs <url> <screenshot.png> [chromium]");
  process.exit(2);
}

const WAIT_MS = 25_000;
overallDeadline("compressed.mjs", 50_000);

await withPage(url, screenshot, executablePath, async (page) => {
  const done = await waitFor("compressed.mjs", page, () => window.done === true, null, WAIT_MS);
  const summary = await page.evaluate(() => ({
    events: window.events,
    opens: window.opens,
    done: window.done === true,
  }));
  report(done, summary);
});
