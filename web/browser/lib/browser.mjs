// Debian's Chromium driven by playwright-core (which downloads no browser).

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}

/**
 * A fresh context on `baseURL`; uncaught errors of its pages (the
 * `page` event fires for `newPage()` too) are collected in
 * `context.pageErrors`; tests assert there are none.
 */
export async function context(browser, baseURL, options = {}) {
  const ctx = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 }, ...options });
  ctx.pageErrors = [];
  ctx.on('page', (p) => p.on('pageerror', (e) => ctx.pageErrors.push(String(e))));
  return ctx;
}

/** The trimmed text of every element matching `selector`. */
export function texts(page, selector) {
  return page.$$eval(selector, (els) => els.map((e) => e.textContent.trim()));
}
