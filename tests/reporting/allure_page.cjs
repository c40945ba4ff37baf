// Opens one test's page of a generated Allure report in headless Chromium, expands the
// chaos attachments and reports, as JSON on stdout, what the browser actually rendered.
//
// usage: node allure_page.cjs URL SCREENSHOT USER_DATA_DIR
// env:   PLAYWRIGHT_CORE (path of the playwright-core package), CHROMIUM (executable)
"use strict";

const { chromium } = require(process.env.PLAYWRIGHT_CORE);

async function main() {
  const [url, screenshot, userDataDir] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1300 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(url);
    const timelineRow = page.getByText("chaos timeline", { exact: true });
    await timelineRow.waitFor({ timeout: 60000 });
    await timelineRow.click();
    await page.getByText("chaos checks", { exact: true }).click();

    // the chart: Allure shows an SVG attachment as an <img> of a blob URL
    const img = page.locator(".attachment-preview_svg img");
    await img.waitFor({ timeout: 30000 });
    await page.waitForFunction(
      () => {
        const el = document.querySelector(".attachment-preview_svg img");
        return el && el.complete && el.naturalWidth > 0;
      },
      null,
      { timeout: 30000 },
    );
    const chart = await img.evaluate((el) => {
      // draw what the browser decoded and count the pixels that are not white
      const canvas = document.createElement("canvas");
      canvas.width = el.naturalWidth;
      canvas.height = el.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(el, 0, 0);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let inked = 0;
      let red = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if (r < 245 || g < 245 || b < 245) inked++;
        if (r > 180 && g < 90 && b < 90) red++;
      }
      const box = el.getBoundingClientRect();
      return {
        naturalWidth: el.naturalWidth,
        naturalHeight: el.naturalHeight,
        shownWidth: box.width,
        shownHeight: box.height,
        inkedPixels: inked,
        redPixels: red,
      };
    });

    // the check table: Allure shows an HTML attachment in a sandboxed iframe
    const frameEl = page.locator("iframe.attachment-preview_html");
    await frameEl.waitFor({ timeout: 30000 });
    const frameBox = await frameEl.boundingBox();
    const frame = await (await frameEl.elementHandle()).contentFrame();
    await frame.waitForSelector("#chaos-checks tbody tr", { timeout: 30000 });
    const table = await frame.evaluate(() => {
      const t = document.querySelector("#chaos-checks");
      const box = t.getBoundingClientRect();
      const verdict = t.querySelector("tbody tr td.verdict");
      return {
        rows: [...t.querySelectorAll("tbody tr")].map((r) =>
          [...r.cells].map((c) => c.innerText.trim()),
        ),
        width: box.width,
        height: box.height,
        verdictColor: verdict ? getComputedStyle(verdict).color : null,
      };
    });

    const status = await page.locator(".test-result__status").innerText();
    const body = await page.locator("body").innerText();
    await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(
      JSON.stringify({
        status: status.trim(),
        category: /Categories:\s*Hypothesis violated/.test(body),
        chart,
        frame: frameBox,
        table,
      }),
    );
  } finally {
    await context.close();
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
