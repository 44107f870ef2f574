// Walks pages in headless Chromium as a person would, step by step, and checks each page
// with axe-core. Usage: node walk.mjs <spec.json>; prints one JSON report on stdout.
//
// spec: { viewport: {width, height}, javascript: bool, out: "<dir for screenshots>",
//         steps: [ step, ... ] } where a step is one of
//   {goto: url, status?: n}        open a URL (status checked when given)
//   {fill: selector, value}        type into a field
//   {check: selector}              tick a radio or checkbox
//   {select: selector, value}      choose an option
//   {click_first: selector}        click (no navigation), e.g. to open a <details>
//   {submit: selector}             click a button and wait for the next page
//   {enter: selector}              press Enter in a field and wait for the next page
//   {back: true} / {reload: true}  the browser's Back / Reload
//   {see: "text"} / {not_see: "text"}   the page shows (or does not show) a text
//   {see_soon: "text"}               the page shows a text within 20 s (across the reloads
//                                    of a progress page)
//   {title: "start"}               the title starts with this
//   {status: n}                    the last navigation answered n
//   {focused: selector}            the element that has focus matches
//   {axe: "name"}                  axe-core on this page: every violation is reported
//   {shot: "name"}                 a full-page PNG in `out`
// A failed expectation ends the walk with its step number; axe findings are listed.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
if (spec.out) mkdirSync(spec.out, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { axe: {}, shots: [], failed: null, dialogs: 0 };
try {
  const context = await browser.newContext({
    viewport: spec.viewport,
    javaScriptEnabled: spec.javascript !== false,
    locale: spec.locale || 'ja-JP',
  });
  // axe needs scripts; a page walked without JavaScript is checked as a copy in a page
  // that has them (the markup and styles are the same: no page here depends on scripts).
  const checker = await (await browser.newContext({ viewport: spec.viewport })).newPage();
  const page = await context.newPage();
  page.on('dialog', async (d) => { report.dialogs += 1; await d.dismiss(); });
  let last = null;
  const fail = (i, step, why) => { throw Object.assign(new Error(why), { step: i, spec: step }); };
  for (const [i, step] of spec.steps.entries()) {
    if (step.goto) {
      last = await page.goto(step.goto);
      if (step.status && last.status() !== step.status) fail(i, step, `status ${last.status()}`);
    } else if (step.fill) {
      await page.fill(step.fill, step.value, { timeout: 10000 });
    } else if (step.upload) {
      await page.setInputFiles(step.upload, step.path, { timeout: 10000 });
    } else if (step.wait_url) {
      await page.waitForURL(new RegExp(step.wait_url), { timeout: 15000 });
    } else if (step.select) {
      await page.selectOption(step.select, step.value, { timeout: 10000 });
    } else if (step.click_first) {
      await page.locator(step.click_first).first().click({ timeout: 10000 });
    } else if (step.check) {
      await page.check(step.check, { timeout: 10000 });
    } else if (step.submit || step.enter) {
      // A navigation Chromium reports as aborted was superseded by another (it happened
      // once on a loaded machine after a form post): wait for the page that did load; the
      // steps after it check what it shows.
      const nav = page.waitForNavigation({ timeout: 30000 }).catch((e) => {
        if (String(e).includes('ERR_ABORTED')) return null;
        throw e;
      });
      // The click waits for the navigation it starts to begin, as long as the navigation
      // itself may take: a form whose answer takes long to compute (the rule lab's model
      // run, a debug build on a loaded machine) once took more than 10 s.
      if (step.submit) await page.click(step.submit, { timeout: 30000 });
      else await page.press(step.enter, 'Enter', { timeout: 30000 });
      last = await nav;
      if (last === null) await page.waitForLoadState('load', { timeout: 30000 });
    } else if (step.back) {
      last = await page.goBack();
    } else if (step.reload) {
      last = await page.reload();
    } else if (step.see_soon !== undefined) {
      try {
        await page.getByText(step.see_soon).first().waitFor({ timeout: 20000 });
      } catch (e) {
        fail(i, step, `"${step.see_soon}" not on ${page.url()} within 20 s`);
      }
    } else if (step.see !== undefined) {
      const text = await page.content();
      if (!text.includes(step.see)) fail(i, step, `"${step.see}" not on ${page.url()}`);
    } else if (step.not_see !== undefined) {
      const text = await page.content();
      if (text.includes(step.not_see)) fail(i, step, `"${step.not_see}" is on ${page.url()}`);
    } else if (step.title !== undefined) {
      const t = await page.title();
      if (!t.startsWith(step.title)) fail(i, step, `title "${t}"`);
    } else if (step.status !== undefined) {
      const s = last ? last.status() : 0;
      if (s !== step.status) fail(i, step, `status ${s}`);
    } else if (step.focused) {
      // Read in the checker page (the walked page may have no scripts).
      const html = await page.content();
      await checker.setContent(html);
      const ok = await checker.evaluate((sel) => {
        const el = document.querySelector(sel);
        return !!el && el.hasAttribute('autofocus');
      }, step.focused);
      if (!ok) fail(i, step, `${step.focused} does not take the focus`);
    } else if (step.fits !== undefined) {
      // The page fits its window's width: nothing makes a phone scroll sideways.
      const [wide, window_] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      if (wide > window_) fail(i, step, `${page.url()} is ${wide} px wide in a ${window_} px window`);
    } else if (step.axe) {
      const html = await page.content();
      await checker.setContent(html);
      await checker.addScriptTag({ content: axeSource });
      const result = await checker.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const r = await axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({
          id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
        }));
      });
      report.axe[step.axe] = result;
    } else if (step.shot) {
      const file = `${spec.out}/${step.shot}.png`;
      await page.screenshot({ path: file, fullPage: true });
      report.shots.push(file);
    } else {
      fail(i, step, 'unknown step');
    }
  }
  report.url = page.url();
} catch (e) {
  report.failed = { step: e.step ?? null, why: e.message, spec: e.spec ?? null };
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
