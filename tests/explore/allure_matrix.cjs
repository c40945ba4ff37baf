// Opens the "resilience matrix" result of a generated Allure report in headless
// Chromium, expands its heatmap attachment and reports, as JSON on stdout, what the
// browser rendered: the decoded SVG's size and how many green and red pixels it painted.
//
// usage: node allure_matrix.cjs URL SCREENSHOT USER_DATA_DIR
// env:   PLAYWRIGHT_CORE (path of the playwright-core package), CHROMIUM (executable)
"use strict";

const { chromium } = require(process.env.PLAYWRIGHT_CORE);

async function main() {
  const [url, screenshot, userDataDir] = process.argv.slice(2);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1100 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(url);
    const row = page.getByText("resilience matrix heatmap", { exact: true });
    await row.waitFor({ timeout: 60000 });
    await row.click();
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
    const heatmap = await img.evaluate((el) => {
      const canvas = document.createElement("canvas");
      canvas.width = el.naturalWidth;
      canvas.height = el.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(el, 0, 0);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let green = 0;
      let red = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if (Math.abs(r - 0x2d) < 12 && Math.abs(g - 0xa4) < 12 && Math.abs(b - 0x4e) < 12) green++;
        if (Math.abs(r - 0xcf) < 12 && Math.abs(g - 0x22) < 12 && Math.abs(b - 0x2e) < 12) red++;
      }
      const box = el.getBoundingClientRect();
      return {
        naturalWidth: el.naturalWidth,
        shownHeight: box.height,
        greenPixels: green,
        redPixels: red,
      };
    });
    const status = await page.locator(".test-result__status").innerText();
    await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(JSON.stringify({ status: status.trim(), heatmap }));
  } finally {
    await context.close();
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
