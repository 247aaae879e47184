// Opens the clock example in headless Chromium and reports what the page saw.
//
// Usage: node tests/browser/clock.mjs <url> <screenshot.png> [chromium]
// Prints one JSON line {ticks, opens, text, state} and exits 0 once the page has seen the
// stream end and reconnect; exits 1 with the same summary on stderr if it does not in time.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node clock.mjs <url> <screenshot.png> [chromium]");
  process.exit(2);
}

// Enough for the server's 10 s stream, the 1 s retry and a few ticks after it.
const WAIT_MS = 25_000;
const WANT_OPENS = 2;
const WANT_TICKS = 12;

// A last resort, inside the caller's own kill timeout, should Chromium stop answering.
const deadline = setTimeout(() => {
  console.error("clock.mjs: overall deadline passed");
  process.exit(1);
}, 50_000);
deadline.unref();

const profile = mkdtempSync(join(tmpdir(), "tower-sse-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: 30_000,
    viewport: { width: 800, height: 600 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => console.error(`page: ${message.text()}`));
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));

  await page.goto(url);
  let done = true;
  try {
    await page.waitForFunction(
      ([opens, ticks]) => window.opens >= opens && window.ticks.length >= ticks,
      [WANT_OPENS, WANT_TICKS],
      { timeout: WAIT_MS, polling: 200 },
    );
  } catch (error) {
    console.error(`clock.mjs: ${error.message.split("\n")[0]}`);
    done = false;
  }

  const summary = await page.evaluate(() => ({
    ticks: window.ticks.map((tick) => tick.seq),
    opens: window.opens,
    text: document.getElementById("time").textContent,
    state: document.getElementById("state").textContent,
  }));
  await page.screenshot({ path: screenshot });

  if (done) {
    console.log(JSON.stringify(summary));
  } else {
    console.error(JSON.stringify(summary));
    process.exitCode = 1;
  }
} finally {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
}
