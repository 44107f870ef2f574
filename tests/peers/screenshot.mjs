// Logs in to the console in headless Chromium (password, then the one-time code), opens a
// page and checks that its chart is visible; writes a PNG screenshot.
// Usage: node screenshot.mjs <base> <user> <password> <code> <path> <out.png>
import { chromium } from 'playwright-core';

const [base, user, password, code, path, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1024, height: 1400 } });
  await page.goto(`${base}/login`);
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.fill('#code', code);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  const resp = await page.goto(`${base}${path}`);
  const chart = page.locator('svg[role=img]').first();
  await chart.waitFor({ state: 'visible', timeout: 30000 });
  const box = await chart.boundingBox();
  const paths = await page.locator('svg[role=img] path').count();
  await page.screenshot({ path: out, fullPage: true });
  console.log(JSON.stringify({ status: resp.status(), width: box.width, height: box.height, paths, title: await page.title() }));
} finally {
  await browser.close();
}
