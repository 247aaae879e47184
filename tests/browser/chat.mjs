// Opens the chat example's page for one room in headless Chromium, talks in the room,
// drops the connection and lets the server end the stream, and reports what the page saw.
//
// Usage: node tests/browser/chat.mjs <url with ?room=...> <screenshot.png> [chromium]
// Prints one JSON line {seen, opens, state} and exits 0 once the page has seen six messages
// over three connections; exits 1 with the same summary on stderr if it does not in time.
//
// The steps: m1 typed into the page's form and m2 posted by the page while connected; the
// page closes its EventSource, m3 and m4 are posted (and one message to another room), and
// a new EventSource resumes with the `lastEventId` query parameter; when the server ends
// that stream (its max_duration), m5 and m6 are posted before the browser's own reconnect,
// which resumes with the `Last-Event-ID` header.

import { overallDeadline, report, waitFor, withPage } from "./launch.mjs";

const [url, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node chat.mjs <url> <screenshot.png> [chromium]");
  process.exit(2);
}

// Each step waits at most this long; the server's streams last 3 s, its retry is 1 s.
const STEP_MS = 15_000;

// A last resort, inside the caller's own kill timeout.
overallDeadline("chat.mjs", 50_000);

await withPage(url, screenshot, executablePath, async (page) => {
  const step = (name, predicate) => waitFor(`chat.mjs: ${name}`, page, predicate, null, STEP_MS);

  let done = await step("first open", () => window.opens >= 1);
  if (done) {
    await page.fill("#text", "m1");
    await page.press("#text", "Enter");
    done = await step("m1", () => window.seen.length >= 1);
  }
  if (done) {
    await page.evaluate(() => window.say("m2"));
    done = await step("m2", () => window.seen.length >= 2);
  }
  if (done) {
    await page.evaluate(async () => {
      window.drop();
      await window.say("m3");
      await window.say("m4");
      await fetch("/chat/elsewhere", { method: "POST", body: "not for this room" });
      window.connect();
    });
    done = await step("resume with the query parameter", () =>
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
    done = await step("resume with the header", () =>
      window.opens >= 3 && window.seen.length >= 6);
  }

  const summary = await page.evaluate(() => ({
    seen: window.seen,
    opens: window.opens,
    state: document.getElementById("state").textContent,
  }));
  report(done, summary);
});
