// Shared by the browser scripts: opens `url` in headless Chromium (Debian's, driven by
// playwright-core, which downloads no browser of its own), runs `visit(page)`, takes a
// screenshot, and always closes the browser and removes its profile.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export async function withPage(url, screenshot, executablePath, visit) {
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
    const result = await visit(page);
    await page.screenshot({ path: screenshot });
    return result;
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// Exits the process if the whole run takes longer than `ms`, should Chromium stop answering.
export function overallDeadline(name, ms) {
  const deadline = setTimeout(() => {
    console.error(`${name}: overall deadline passed`);
    process.exit(1);
  }, ms);
  deadline.unref();
}

// Waits for `predicate(arg)` in the page; false (with the reason on stderr) if it times out.
export async function waitFor(name, page, predicate, arg, timeout) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 200 });
    return true;
  } catch (error) {
    console.error(`${name}: ${error.message.split("\n")[0]}`);
    return false;
  }
}

// Prints the summary as one JSON line: on stdout when done, else on stderr with exit code 1.
export function report(done, summary) {
  if (done) {
    console.log(JSON.stringify(summary));
  } else {
    console.error(JSON.stringify(summary));
    process.exitCode = 1;
  }
}
