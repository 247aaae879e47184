// Opens the chat example in headless Chromium, talks in a room, drops the connection and
// lets the server end the stream, and reports what the page saw.
//
// Usage: node tests/browser/chat.mjs <url> <room> <screenshot.png> [chromium]
// Prints one JSON line {seen, opens, state} and exits 0 once the page has seen six messages
// over three connections; exits 1 with the same summary on stderr if it does not in time.
//
// The steps: m1 typed into the page's form and m2 posted by the page while connected; the
// page closes its EventSource, m3 and m4 are posted (and one message to another room), and
// a new EventSource resumes with the `lastEventId` query parameter; when the server ends
// that stream (its max_duration), m5 and m6 are posted before the browser's own reconnect,
// which resumes with the `Last-Event-ID` header.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, room, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!url || !room || !screenshot) {
  console.error("usage: node chat.mjs <url> <room> <screenshot.png> [chromium]");
  process.exit(2);
}

// Each step waits at most this long; the server's streams last 3 s, its retry is 1 s.
const STEP_MS = 15_000;

// A last resort, inside the caller's own kill timeout, should Chromium stop answering.
const deadline = setTimeout(() => {
  console.error("chat.mjs: overall deadline passed");
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

  const until = (what, test, arg) =>
    page
      .waitForFunction(test, arg, { timeout: STEP_MS, polling: 100 })
      .then(() => true)
      .catch((error) => {
        console.error(`chat.mjs: ${what}: ${error.message.split("\n")[0]}`);
        return false;
      });

  await page.goto(`${url}?room=${encodeURIComponent(room)}`);
  let done = await until("first open", () => window.opens >= 1);
  if (done) {
    await page.fill("#text", "m1");
    await page.press("#text", "Enter");
    done = await until("m1", () => window.seen.length >= 1);
  }
  if (done) {
    await page.evaluate(() => window.say("m2"));
    done = await until("m2", () => window.seen.length >= 2);
  }
  if (done) {
    await page.evaluate(async () => {
      window.drop();
      await window.say("m3");
      await window.say("m4");
      await fetch("/chat/elsewhere", { method: "POST", body: "not for this room" });
      window.connect();
    });
    done = await until("resume with the query parameter", () =>
      window.opens >= 2 && window.seen.length >= 4);
  }
  if (done) {
    await page.evaluate(() => {
      window.source.addEventListener(
        "error",
        async () => {
          await window.say("m5");
          await window.say("m6");
        },
        { once: true },
      );
    });
    done = await until("resume with the header", () =>
      window.opens >= 3 && window.seen.length >= 6);
  }

  const summary = await page.evaluate(() => ({
    seen: window.seen,
    opens: window.opens,
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
