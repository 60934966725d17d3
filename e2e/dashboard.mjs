// The dashboard in a real browser: headless Debian chromium driven by playwright-core,
// against a running `george serve` with the quickstart's job (podinfo-right-size).
//
// A reviewer signs in, rejects plans 1 and 2 from the Approvals inbox with the seed's
// reasons (checking each plan's diff and the growing rejection history), approves plan 3,
// and watches the job page reach Succeeded without reloading; the event log shows both
// reasons and who decided; the step graph matches the JSON API; job-list filters survive
// a reload; a read-only identity sees no decision forms and its forged POSTs are refused;
// axe-core finds no serious or critical violation on any view; every view is captured at
// desktop and phone widths, light and dark.
//
// Run by george-cli/tests/dashboard_e2e.rs (which sets everything up); by hand:
//   GEORGE_E2E_BASE=http://127.0.0.1:PORT GEORGE_E2E_REVIEWER_TOKEN=… \
//   GEORGE_E2E_VIEWER_TOKEN=… GEORGE_E2E_NODE_MODULES=~/.cache/george-ci/e2e-…/node_modules \
//   node e2e/dashboard.mjs
//
// Environment:
//   GEORGE_E2E_BASE            the server's base URL (no trailing slash)
//   GEORGE_E2E_REVIEWER_TOKEN  a token with role decide
//   GEORGE_E2E_REVIEWER_USER   its user name (default reviewer)
//   GEORGE_E2E_VIEWER_TOKEN    a token with role read
//   GEORGE_E2E_VIEWER_USER     its user name (default viewer)
//   GEORGE_E2E_JOB             the job (default podinfo-right-size)
//   GEORGE_E2E_REASON_1/_2     the two rejection reasons (default: the seed's)
//   GEORGE_E2E_SCREENSHOTS     where screenshots go (default ./dashboard-screenshots)
//   GEORGE_E2E_NODE_MODULES    the node_modules holding playwright-core and axe-core
//                              (default: the first entry of NODE_PATH)
//   GEORGE_E2E_CHROMIUM        the browser (default /usr/bin/chromium)
//   GEORGE_E2E_TIMEOUT_MS      how long to wait for the engine (default 60000)
//
// Exits 0 when every check passed; otherwise 1, after naming the step and what failed
// (and saving FAILURE.png / FAILURE.html of the page in the screenshot directory).

import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const env = process.env;
const BASE = (env.GEORGE_E2E_BASE || '').replace(/\/+$/, '');
const REVIEWER_TOKEN = env.GEORGE_E2E_REVIEWER_TOKEN || '';
const REVIEWER_USER = env.GEORGE_E2E_REVIEWER_USER || 'reviewer';
const VIEWER_TOKEN = env.GEORGE_E2E_VIEWER_TOKEN || '';
const VIEWER_USER = env.GEORGE_E2E_VIEWER_USER || 'viewer';
const JOB = env.GEORGE_E2E_JOB || 'podinfo-right-size';
const REASON_1 = env.GEORGE_E2E_REASON_1 || 'the application is deployed with argocd, hpa will cause issues';
const REASON_2 = env.GEORGE_E2E_REASON_2 ||
  'this is not the solution for auto-scaling with gitops, argoCD is maintaining the state from git, adding hpa will cause drift from the committed replicas vs the hpa replica';
const SHOTS = resolve(env.GEORGE_E2E_SCREENSHOTS || 'dashboard-screenshots');
const NODE_MODULES = resolve(env.GEORGE_E2E_NODE_MODULES || (env.NODE_PATH || '').split(':')[0] || 'node_modules');
const CHROMIUM = env.GEORGE_E2E_CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = Number(env.GEORGE_E2E_TIMEOUT_MS || 60000);

// ESM ignores NODE_PATH: load the packages from the cache directory explicitly.
const require = createRequire(join(NODE_MODULES, 'george-e2e.cjs'));
const { chromium } = require('playwright-core');
const AXE = require.resolve('axe-core/axe.min.js');

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const VARIANTS = [
  { tag: 'desktop-light', viewport: DESKTOP, colorScheme: 'light', axe: true },
  { tag: 'desktop-dark', viewport: DESKTOP, colorScheme: 'dark', axe: true },
  { tag: 'phone-light', viewport: PHONE, colorScheme: 'light', axe: true },
  { tag: 'phone-dark', viewport: PHONE, colorScheme: 'dark', axe: true },
];

// ---------------------------------------------------------------------------------------
// Logging and failure

const t0 = Date.now();
let stepNo = 0;
let current = '';
function step(what) {
  stepNo += 1;
  current = what;
  console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${stepNo}. ${what}`);
}
function info(what) {
  console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]    ${what}`);
}
class Check extends Error {}
function check(cond, message) {
  if (!cond) throw new Check(message);
}
const norm = (s) => String(s ?? '').replace(/[\s_-]/g, '').toLowerCase();
const squash = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` (truthy = done) every `every` ms until `ms`; throws `message` on timeout. */
async function until(fn, message, ms = WAIT_MS, every = 500) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Check(`${message} (waited ${ms / 1000} s; last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(every);
  }
}

// ---------------------------------------------------------------------------------------
// The JSON API (bearer token), for what the pages are checked against

async function api(path, token = REVIEWER_TOKEN) {
  const r = await fetch(`${BASE}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await r.text();
  check(r.ok, `GET /api/v1${path}: ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------------------
// Browser helpers

const pageErrors = [];
const violations = [];
const layoutProblems = [];

function watch(page, who) {
  page.on('pageerror', (e) => {
    pageErrors.push(`${who} ${page.url()}: ${e.message}`);
    info(`!! page error (${who}) at ${page.url()}: ${e.message}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) info(`   ${who}: ${r.request().method()} ${r.url()} answered ${r.status()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') info(`   console error (${who}) at ${page.url()}: ${m.text()}`);
  });
  page.setDefaultTimeout(20000);
  page.setDefaultNavigationTimeout(30000);
}

async function newPage(browser, { viewport = DESKTOP, colorScheme = 'light', storageState, who = 'browser' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, storageState });
  const page = await context.newPage();
  watch(page, who);
  return { context, page };
}

/** Navigates and checks the status and the frame every page shares. */
async function open(page, path, { layout = true } = {}) {
  const r = await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
  check(r, `GET ${path}: no response`);
  check(r.status() === 200, `GET ${path}: status ${r.status()} (final URL ${page.url()})`);
  if (layout) await checkLayout(page, path);
  return r;
}

async function checkLayout(page, path) {
  const nav = await page.locator('nav a').allTextContents();
  const links = nav.map(squash);
  for (const want of ['Overview', 'Jobs', 'Approvals', 'Catalogue']) {
    check(links.includes(want), `${path}: <nav> has no link whose text is exactly ${JSON.stringify(want)} (links: ${JSON.stringify(links)})`);
  }
  check((await page.locator('main').count()) === 1, `${path}: expected one <main>, found ${await page.locator('main').count()}`);
  check((await page.locator('h1').count()) >= 1, `${path}: no <h1>`);
}

async function whoami(page) {
  const el = page.locator('[data-testid="whoami"]');
  check((await el.count()) >= 1, `${page.url()}: no [data-testid=whoami]`);
  return squash(await el.first().textContent());
}

async function login(page, token, user) {
  await open(page, '/ui/login', { layout: false });
  const form = page.locator('form[data-testid="login-form"]');
  check((await form.count()) === 1, '/ui/login: no form[data-testid=login-form]');
  check(norm(await form.getAttribute('method')) === 'post', '/ui/login: the login form is not method="post"');
  const input = form.locator('input#token[name="token"][type="password"]');
  check((await input.count()) === 1, '/ui/login: no <input id="token" name="token" type="password">');
  await input.fill(token);
  const post = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes('/ui/login'));
  await Promise.all([
    page.waitForURL((u) => !u.pathname.endsWith('/ui/login')),
    form.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  const r = await post;
  check(r.status() === 303, `POST /ui/login: status ${r.status()}, expected 303`);
  const location = r.headers()['location'] || '';
  check(/\/ui\/?$/.test(new URL(location, BASE).pathname), `POST /ui/login: redirects to ${JSON.stringify(location)}, expected /ui/`);
  const setCookie = (await r.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
  const session = setCookie.find((c) => c.startsWith('george_session='));
  check(session, `POST /ui/login: no george_session cookie (Set-Cookie: ${JSON.stringify(setCookie)})`);
  check(/;\s*HttpOnly/i.test(session), `george_session is not HttpOnly: ${session}`);
  check(/;\s*SameSite=Strict/i.test(session), `george_session is not SameSite=Strict: ${session}`);
  await checkLayout(page, page.url());
  const me = await whoami(page);
  check(me.includes(user), `whoami shows ${JSON.stringify(me)}, expected it to name ${user}`);
  info(`signed in as ${user} (whoami: ${JSON.stringify(me)}), landed on ${new URL(page.url()).pathname}`);
}

/** Runs axe-core on the page; records serious and critical violations. */
async function axe(page, view, tag) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target.join(' '), summary: n.failureSummary, html: n.html.slice(0, 200) })),
      count: v.nodes.length,
    }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.filter((v) => !bad.includes(v));
  info(`axe ${view} (${tag}): ${bad.length} serious/critical, ${minor.length} minor/moderate${minor.length ? ' (' + minor.map((v) => v.id).join(', ') + ')' : ''}`);
  for (const v of bad) violations.push({ view, tag, ...v });
}

/** Screenshots and axe of `path` in every variant, signed in with `storageState`; checks
 * that dark differs from light and that a phone needs no sideways scrolling of the page. */
async function capture(browser, view, path, storageState) {
  const background = {};
  for (const v of VARIANTS) {
    const { context, page } = await newPage(browser, { viewport: v.viewport, colorScheme: v.colorScheme, storageState, who: `${view}/${v.tag}` });
    try {
      await open(page, path, { layout: view !== 'login' });
      await page.waitForLoadState('networkidle', { timeout: 3000 }).catch(() => {});
      // The whole page, cut at three screens (the job page's event log runs long).
      const file = join(SHOTS, `${view}-${v.tag}.png`);
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      const clip = { x: 0, y: 0, width: v.viewport.width, height: Math.min(height, 3 * v.viewport.height) };
      await page.screenshot({ path: file, fullPage: true, clip });
      if (v.axe) await axe(page, view, v.tag);
      const look = await page.evaluate((width) => {
        // The outermost elements sticking out of the window, outside scrolling boxes.
        const inScroller = (e) => {
          for (let p = e.parentElement; p; p = p.parentElement) {
            if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true;
          }
          return false;
        };
        const describe = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
          (e.getAttribute('data-testid') ? `[data-testid=${e.getAttribute('data-testid')}]` : '') +
          (e.classList.length ? '.' + [...e.classList].join('.') : '');
        const wide = [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > width + 1 && !inScroller(e))
          .filter((e, _, all) => !all.includes(e.parentElement))
          .slice(0, 5)
          .map((e) => `${describe(e)} (right edge ${Math.round(e.getBoundingClientRect().right)} px)`);
        return {
          background: getComputedStyle(document.body).backgroundColor,
          scrollWidth: document.documentElement.scrollWidth,
          wide,
        };
      }, v.viewport.width);
      background[v.tag] = look.background;
      if (look.scrollWidth > v.viewport.width + 1) {
        const problem = `${view} (${v.tag}): the page is ${look.scrollWidth} px wide in a ${v.viewport.width} px window (it scrolls sideways): ${look.wide.join(', ') || '?'}`;
        info(`!! ${problem}`);
        layoutProblems.push(problem);
      }
    } finally {
      await context.close();
    }
  }
  check(background['desktop-light'] !== background['desktop-dark'],
    `${view}: the same background (${background['desktop-light']}) in light and dark colour schemes`);
  info(`screenshots: ${view}-{desktop,phone}-{light,dark}.png (background light ${background['desktop-light']}, dark ${background['desktop-dark']})`);
}

// ---------------------------------------------------------------------------------------
// The approvals inbox

const approvalSel = (id) => `article[data-testid="approval"][data-approval-id="${id}"]`;

/** Reloads the inbox until an open request of JOB not in `seen` shows; returns its id. */
async function nextApproval(page, seen) {
  return until(async () => {
    await open(page, '/ui/approvals');
    const ids = await page.locator(`article[data-testid="approval"][data-job="${JOB}"]`).evaluateAll(
      (els) => els.filter((e) => e.querySelector('form[data-testid="approve-form"], form[data-testid="reject-form"]')).map((e) => e.getAttribute('data-approval-id')),
    );
    return ids.find((id) => id && !seen.includes(id));
  }, `no new open approval request of ${JOB} in the inbox (seen: ${JSON.stringify(seen)})`, WAIT_MS, 1000);
}

/** Checks one open request's parts; returns them as text. */
async function readApproval(page, id) {
  const a = page.locator(approvalSel(id));
  check((await a.count()) === 1, `approval ${id}: expected one <article>, found ${await a.count()}`);
  const stepId = await a.getAttribute('data-step');
  check(stepId === 'plan', `approval ${id}: data-step=${JSON.stringify(stepId)}, expected "plan"`);
  const part = async (t) => {
    const el = a.locator(`[data-testid="${t}"]`);
    check((await el.count()) >= 1, `approval ${id}: no [data-testid=${t}]`);
    return squash(await el.first().textContent());
  };
  const out = {
    summary: await part('plan-summary'),
    actions: await part('plan-actions'),
    diff: await a.locator('[data-testid="plan-diff"]').first().textContent().catch(() => ''),
    rule: await part('approver-rule'),
    history: await a.locator('[data-testid="rejection-history"] li').allTextContents(),
  };
  await part('rejection-history').catch(() => {
    throw new Check(`approval ${id}: no [data-testid=rejection-history]`);
  });
  check(squash(out.diff).length > 0, `approval ${id}: [data-testid=plan-diff] is missing or empty`);
  for (const f of ['approve-form', 'reject-form']) {
    const form = a.locator(`form[data-testid="${f}"]`);
    check((await form.count()) === 1, `approval ${id}: no form[data-testid=${f}] for a decider`);
    check(norm(await form.getAttribute('method')) === 'post', `approval ${id}: ${f} is not method="post"`);
    for (const hidden of ['csrf', 'digest']) {
      const v = await form.locator(`input[type="hidden"][name="${hidden}"]`).getAttribute('value').catch(() => null);
      check(v, `approval ${id}: ${f} has no hidden input ${hidden} with a value`);
    }
  }
  check((await a.locator('form[data-testid="reject-form"] textarea[name="reason"]').count()) === 1, `approval ${id}: the reject form has no <textarea name="reason">`);
  info(`plan ${id}: ${out.summary.slice(0, 100)}`);
  return out;
}

/** Submits one of the request's forms (after `fill`) and checks the 303 back to the inbox. */
async function decide(page, id, form, button, fill, { keyboard = false } = {}) {
  const f = page.locator(approvalSel(id)).locator(`form[data-testid="${form}"]`);
  if (fill) await fill(f);
  const post = page.waitForResponse((r) => r.request().method() === 'POST');
  const submit = f.getByRole('button', { name: button, exact: true });
  if (keyboard) {
    await tabTo(page, submit, `the ${button} button of ${id}`);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')]);
  } else {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), submit.click()]);
  }
  const r = await post;
  check(r.status() === 303, `${button} ${id}: POST ${new URL(r.url()).pathname} answered ${r.status()}, expected 303`);
  const to = new URL(r.headers()['location'] || '', r.url()).pathname;
  check(/\/ui\/approvals\/?$/.test(to), `${button} ${id}: redirected to ${to}, expected /ui/approvals`);
  check(page.url().includes('/ui/approvals'), `${button} ${id}: landed on ${page.url()}`);
  check((await page.locator(approvalSel(id)).locator('form[data-testid="approve-form"]').count()) === 0,
    `${button} ${id}: the request still shows its decision forms after the decision`);
}

/** Presses Tab (at most 80 times) until `target` has the focus. */
async function tabTo(page, target, what) {
  const handle = await target.elementHandle();
  for (let i = 0; i < 80; i += 1) {
    if (await handle.evaluate((e) => e === document.activeElement)) return i;
    await page.keyboard.press('Tab');
  }
  throw new Check(`${what} cannot be reached with the Tab key (80 presses)`);
}

async function approvalStatus(id) {
  const a = await api(`/approvals/${encodeURIComponent(id)}`);
  return a.status;
}

// ---------------------------------------------------------------------------------------
// The run

async function main() {
  check(BASE, 'GEORGE_E2E_BASE is not set');
  check(REVIEWER_TOKEN && VIEWER_TOKEN, 'GEORGE_E2E_REVIEWER_TOKEN and GEORGE_E2E_VIEWER_TOKEN must be set');
  mkdirSync(SHOTS, { recursive: true });
  info(`base ${BASE}, job ${JOB}, chromium ${CHROMIUM}, node_modules ${NODE_MODULES}, screenshots ${SHOTS}`);

  step('launch headless chromium');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  info(`chromium ${browser.version()}`);
  let failed = null;
  const reviewer = await newPage(browser, { who: 'reviewer' });
  const page = reviewer.page;
  try {
    step('the login page (signed out)');
    await capture(browser, 'login', '/ui/login', undefined);

    step(`reviewer signs in through the login form as ${REVIEWER_USER}`);
    await login(page, REVIEWER_TOKEN, REVIEWER_USER);

    step('open the Approvals inbox from the navigation');
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.locator('nav a', { hasText: /^\s*Approvals\s*$/ }).first().click()]);
    check(new URL(page.url()).pathname.replace(/\/$/, '') === '/ui/approvals', `the Approvals link leads to ${page.url()}`);

    const seen = [];
    step('plan 1 shows up with its diff; reject it with the seed\'s first reason');
    const id1 = await nextApproval(page, seen);
    const p1 = await readApproval(page, id1);
    check(/enabled:\s*true/.test(p1.diff) && /enabled:\s*false/.test(p1.diff),
      `plan 1's diff does not show hpa.enabled false → true:\n${p1.diff}`);
    check(p1.history.length === 0, `plan 1: the rejection history should be empty, has ${JSON.stringify(p1.history)}`);
    await decide(page, id1, 'reject-form', 'Reject', (f) => f.locator('textarea[name="reason"]').fill(REASON_1));
    check((await approvalStatus(id1)) === 'rejected', `plan 1 (${id1}) is not rejected in the API`);
    seen.push(id1);
    info(`rejected ${id1}`);

    step('plan 2 appears; its rejection history lists reason 1; reject it with the second reason, by keyboard');
    const id2 = await nextApproval(page, seen);
    const p2 = await readApproval(page, id2);
    check(p2.history.length === 1 && squash(p2.history[0]).includes(REASON_1),
      `plan 2: the rejection history should list reason 1 only, has ${JSON.stringify(p2.history.map(squash))}`);
    // This time with the keyboard only: Tab to the reason, type it, Tab to Reject, Enter.
    await page.evaluate(() => document.activeElement?.blur());
    const reason2 = page.locator(approvalSel(id2)).locator('form[data-testid="reject-form"] textarea[name="reason"]');
    const tabs = await tabTo(page, reason2, `the reason of ${id2}`);
    await page.keyboard.type(REASON_2);
    await decide(page, id2, 'reject-form', 'Reject', null, { keyboard: true });
    info(`(with the keyboard: ${tabs} Tab presses to the reason)`);
    check((await approvalStatus(id2)) === 'rejected', `plan 2 (${id2}) is not rejected in the API`);
    seen.push(id2);
    info(`rejected ${id2}`);

    step('plan 3 appears: history lists reasons 1 then 2; its diff scales replicaCount 5 → 2');
    const id3 = await nextApproval(page, seen);
    const p3 = await readApproval(page, id3);
    const h3 = p3.history.map(squash);
    check(h3.length === 2 && h3[0].includes(REASON_1) && h3[1].includes(REASON_2),
      `plan 3: the rejection history should list reason 1 then reason 2, has ${JSON.stringify(h3)}`);
    check(/-\s*replicaCount: 5/.test(p3.diff) && /\+\s*replicaCount: 2/.test(p3.diff),
      `plan 3's diff does not show replicaCount 5 → 2:\n${p3.diff}`);
    const decidedCount = await page.locator('[data-testid="decided"]').count();
    check(decidedCount >= 1, 'the inbox shows no [data-testid=decided] item after two rejections');

    // The approve form as a decider sees it, for the forgeries below.
    const approveForm = page.locator(approvalSel(id3)).locator('form[data-testid="approve-form"]');
    const forged = await approveForm.evaluate((f) => ({ action: f.action, fields: Object.fromEntries(new FormData(f)) }));
    info(`approve form: POST ${new URL(forged.action).pathname} with ${Object.keys(forged.fields).join(', ')}`);

    step('the inbox in every variant (plan 3 open, two rejections decided), with axe');
    const reviewerState = await reviewer.context.storageState();
    await capture(browser, 'approvals', '/ui/approvals', reviewerState);

    step(`read-only identity ${VIEWER_USER} in a fresh context: no decision forms, forged POSTs refused`);
    {
      const viewer = await newPage(browser, { who: 'viewer' });
      try {
        await login(viewer.page, VIEWER_TOKEN, VIEWER_USER);
        await open(viewer.page, '/ui/approvals');
        const articles = await viewer.page.locator('article[data-testid="approval"]').count();
        check(articles >= 1, `the viewer's inbox shows no open request (expected ${id3})`);
        const forms = await viewer.page.locator('form[data-testid="approve-form"], form[data-testid="reject-form"]').count();
        check(forms === 0, `the read-only viewer sees ${forms} approve/reject forms`);
        const postForms = await viewer.page.locator('main form[method="post" i]').count();
        check(postForms === 0, `the read-only viewer's inbox has ${postForms} POST forms`);
        await open(viewer.page, `/ui/jobs/${JOB}`);
        const jobForms = await viewer.page.locator('form[data-testid="approve-form"], form[data-testid="reject-form"]').count();
        check(jobForms === 0, `the read-only viewer sees ${jobForms} decision forms on the job page`);
        await open(viewer.page, '/ui/approvals');
        const attempts = [
          ['without csrf', Object.fromEntries(Object.entries(forged.fields).filter(([k]) => k !== 'csrf'))],
          ['with the reviewer\'s csrf', forged.fields],
        ];
        for (const [label, fields] of attempts) {
          const r = await viewer.page.evaluate(async ({ action, fields }) => {
            const res = await fetch(action, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual', credentials: 'same-origin' });
            return { status: res.status, type: res.type };
          }, { action: forged.action, fields });
          check(r.status === 403, `forged approve POST ${label} as ${VIEWER_USER}: status ${r.status} (${r.type}), expected 403`);
          info(`forged approve POST ${label}: 403`);
        }
        check((await approvalStatus(id3)) === 'open', `plan 3 (${id3}) is no longer open after the forged POSTs`);
        await open(page, '/ui/approvals');
        check((await page.locator(approvalSel(id3)).locator('form[data-testid="approve-form"]').count()) === 1,
          `plan 3 (${id3}) no longer shows as open to the reviewer after the forged POSTs`);
      } finally {
        await viewer.context.close();
      }
    }

    step(`open the job page in a second tab (AwaitingApproval), then approve plan 3 in the inbox`);
    const jp = await reviewer.context.newPage();
    watch(jp, 'reviewer/job');
    await open(jp, `/ui/jobs/${JOB}`);
    let navigations = 0;
    const onNav = (f) => { if (f === jp.mainFrame()) navigations += 1; };
    jp.on('framenavigated', onNav);
    await jp.evaluate(() => { window.__georgeE2eNoReload = true; });
    const statusEl = jp.locator('[data-testid="job-status"]');
    check((await statusEl.count()) === 1, `/ui/jobs/${JOB}: expected one [data-testid=job-status], found ${await statusEl.count()}`);
    const initial = squash(await statusEl.textContent());
    check(initial === 'AwaitingApproval', `/ui/jobs/${JOB} before the approval: job-status reads ${JSON.stringify(initial)}, expected "AwaitingApproval"`);
    info(`job page open, status ${JSON.stringify(initial)}`);
    await page.bringToFront();
    await decide(page, id3, 'approve-form', 'Approve');
    check((await approvalStatus(id3)) === 'approved', `plan 3 (${id3}) is not approved in the API`);
    info(`approved ${id3}`);
    const decidedText = squash(await page.locator('[data-testid="decided"]').allTextContents().then((a) => a.join(' | ')));
    check(decidedText.includes(REVIEWER_USER), `the decided requests do not name ${REVIEWER_USER}: ${decidedText.slice(0, 400)}`);

    step(`on the job page opened before the approval, watch ${JOB} reach Succeeded without reloading`);
    await jp.bringToFront();
    const seenStatuses = [initial];
    await until(async () => {
      const s = squash(await statusEl.textContent());
      if (s !== seenStatuses[seenStatuses.length - 1]) { seenStatuses.push(s); info(`status now: ${JSON.stringify(s)}`); }
      return s === 'Succeeded';
    }, `[data-testid=job-status] never read "Succeeded" (read ${JSON.stringify(seenStatuses)}; API: ${JSON.stringify((await api(`/jobs/${JOB}`)).status)})`, WAIT_MS, 250);
    check(navigations === 0 && (await jp.evaluate(() => window.__georgeE2eNoReload === true)),
      `the job page navigated/reloaded ${navigations} time(s) while waiting: the status must update live`);
    const job = await api(`/jobs/${JOB}`);
    check(norm(job.status) === 'succeeded', `the API says ${JOB} is ${job.status}`);
    info(`Succeeded live (statuses seen: ${seenStatuses.join(' → ')})`);

    step('the event log on that page (still not reloaded) shows both reasons and who decided');
    {
      const rows = (await jp.locator('table[data-testid="event-log"] tr[data-testid="event"]').allTextContents()).map(squash);
      check(rows.length > 0, `/ui/jobs/${JOB}: no table[data-testid=event-log] tr[data-testid=event] rows`);
      for (const [n, reason] of [[1, REASON_1], [2, REASON_2]]) {
        const row = rows.find((r) => r.includes(reason));
        check(row, `the event log has no row with reason ${n} (${rows.length} rows)`);
        check(row.includes(REVIEWER_USER), `the event log's row with reason ${n} does not name ${REVIEWER_USER}: ${row}`);
      }
      writeFileSync(join(SHOTS, 'event-log.txt'), rows.join('\n') + '\n');
      const approvedRow = rows.find((r) => /approved/i.test(r) && r.includes(id3) && r.includes(REVIEWER_USER));
      check(approvedRow, `the event log has no row of ${REVIEWER_USER} approving ${id3} (rows in ${join(SHOTS, 'event-log.txt')})`);
      info(`${rows.length} event rows; the approval: ${approvedRow.slice(0, 160)}`);
    }

    step('the step graph: one node per step, each in its API state');
    {
      check((await jp.locator('svg[data-testid="timeline"]').count()) === 1, `/ui/jobs/${JOB}: no svg[data-testid=timeline]`);
      const graph = async (p) => p.locator('svg[data-testid="step-graph"] g[data-testid="step-node"]').evaluateAll(
        (els) => els.map((e) => ({ step: e.getAttribute('data-step'), state: e.getAttribute('data-state') })));
      const compare = (nodes, steps) => {
        const problems = [];
        if (nodes.length !== steps.length) problems.push(`${nodes.length} nodes for ${steps.length} steps`);
        for (const s of steps) {
          const n = nodes.filter((x) => x.step === s.id);
          if (n.length !== 1) problems.push(`step ${s.id}: ${n.length} nodes`);
          else if (n[0].state !== s.state) problems.push(`step ${s.id}: data-state=${JSON.stringify(n[0].state)}, API state ${JSON.stringify(s.state)}`);
        }
        return problems;
      };
      let live = [];
      await until(async () => (live = compare(await graph(jp), job.steps)).length === 0,
        `the step graph on the live job page (not reloaded) does not match GET /api/v1/jobs/${JOB}: ${live.join('; ')}`, 5000, 200)
        .catch((e) => { throw new Check(`${e.message}: ${live.join('; ')}`); });
      info('the live graph (not reloaded) matches the API; now after a reload:');
      check(navigations === 0, `the job page reloaded ${navigations} time(s) since the approval`);
      jp.off('framenavigated', onNav);
      await jp.close();
      await open(page, `/ui/jobs/${JOB}`);
      const nodes = await graph(page);
      const problems = compare(nodes, job.steps);
      check(problems.length === 0, `the step graph does not match GET /api/v1/jobs/${JOB}: ${problems.join('; ')} (nodes ${JSON.stringify(nodes)})`);
      info(`nodes: ${nodes.map((n) => `${n.step}=${n.state}`).join(', ')}`);
    }

    step('a transcript page linked from the job page');
    const transcriptHref = await page.locator(`a[href*="/ui/jobs/${JOB}/steps/"][href*="/attempts/"]`).first().getAttribute('href').catch(() => null);
    check(transcriptHref, `/ui/jobs/${JOB}: no link to /ui/jobs/${JOB}/steps/{step}/attempts/{n}`);
    const transcriptPath = new URL(transcriptHref, `${BASE}/ui/jobs/${JOB}`).pathname;
    await open(page, transcriptPath);
    info(`transcript: ${transcriptPath}`);

    step('jobs list: filters set through the form survive a reload');
    {
      await open(page, '/ui/jobs');
      const form = page.locator('form[data-testid="job-filters"]');
      check((await form.count()) === 1, '/ui/jobs: no form[data-testid=job-filters]');
      check(norm((await form.getAttribute('method')) || 'get') === 'get', '/ui/jobs: the filter form is not method="get"');
      for (const name of ['status', 'template', 'agent', 'text', 'sort', 'from', 'to']) {
        check((await form.locator(`[name="${name}"]`).count()) >= 1, `/ui/jobs: the filter form has no field named ${name}`);
      }
      const setField = async (name, wanted) => {
        const el = form.locator(`[name="${name}"]`).first();
        const tag = await el.evaluate((e) => e.tagName.toLowerCase());
        if (tag === 'select') {
          const options = await el.locator('option').evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent.trim() })));
          const pick = typeof wanted === 'function' ? wanted(options) : options.find((o) => norm(o.value) === norm(wanted) || norm(o.label) === norm(wanted));
          check(pick, `/ui/jobs: ${name} has no option for ${typeof wanted === 'function' ? 'a non-default sort' : wanted} (options: ${JSON.stringify(options)})`);
          await el.selectOption(pick.value);
          return pick.value;
        }
        const v = typeof wanted === 'function' ? wanted([]) : wanted;
        await el.fill(v);
        return v;
      };
      const want = {
        status: await setField('status', job.status),
        template: await setField('template', job.template),
        text: await setField('text', 'podinfo'),
        sort: await setField('sort', (opts) => opts.find((o, i) => i > 0 && o.value) || opts.find((o) => o.value) || { value: 'name' }),
      };
      info(`filters: ${JSON.stringify(want)}`);
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), form.evaluate((f) => f.requestSubmit())]);
      const checkFilters = async (when) => {
        const u = new URL(page.url());
        for (const [k, v] of Object.entries(want)) {
          check(u.searchParams.get(k) === v, `${when}: the URL ${u.pathname}${u.search} has ${k}=${JSON.stringify(u.searchParams.get(k))}, expected ${JSON.stringify(v)}`);
          const got = await page.locator(`form[data-testid="job-filters"] [name="${k}"]`).first().inputValue();
          check(got === v, `${when}: the form's ${k} is ${JSON.stringify(got)}, expected ${JSON.stringify(v)}`);
        }
        const rows = await page.locator('tr[data-testid="job-row"]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-job'), e.getAttribute('data-status')]));
        const mine = rows.find(([n]) => n === JOB);
        check(mine, `${when}: the filtered list has no row for ${JOB} (rows: ${JSON.stringify(rows)})`);
        check(norm(mine[1]) === norm(job.status), `${when}: ${JOB}'s row has data-status=${JSON.stringify(mine[1])}, API ${JSON.stringify(job.status)}`);
        for (const [n, s] of rows) check(norm(s) === norm(job.status), `${when}: the list filtered on status ${want.status} shows ${n} (${s})`);
      };
      await checkFilters('after submitting');
      const before = page.url();
      await page.reload({ waitUntil: 'load' });
      check(page.url() === before, `the reload changed the URL: ${before} → ${page.url()}`);
      await checkFilters('after a reload');
      info(`kept: ${new URL(page.url()).search}`);
      await setField('text', 'no-such-job-anywhere');
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.locator('form[data-testid="job-filters"]').evaluate((f) => f.requestSubmit())]);
      const none = await page.locator(`tr[data-testid="job-row"][data-job="${JOB}"]`).count();
      check(none === 0, `text=no-such-job-anywhere still lists ${JOB}`);
    }

    step('every view in every variant (desktop/phone × light/dark), with axe');
    const state = await reviewer.context.storageState();
    await capture(browser, 'overview', '/ui/', state);
    await capture(browser, 'jobs', '/ui/jobs', state);
    await capture(browser, 'job', `/ui/jobs/${JOB}`, state);
    await capture(browser, 'transcript', transcriptPath, state);
    await capture(browser, 'approvals-decided', '/ui/approvals', state);
    await capture(browser, 'catalogue', '/ui/catalogue', state);

    step('accessibility, layout and page errors');
    for (const v of violations) {
      console.log(`  axe ${v.impact.toUpperCase()} on ${v.view} (${v.tag}): ${v.id}: ${v.help} (${v.count} nodes) ${v.helpUrl}`);
      for (const n of v.nodes) console.log(`      ${n.target}: ${squash(n.summary).slice(0, 300)}\n        ${n.html}`);
    }
    const distinct = [...new Set(violations.map((v) => `${v.view}:${v.id}`))];
    check(violations.length === 0, `axe found ${violations.length} serious or critical violations (${distinct.join(', ')}), listed above`);
    check(layoutProblems.length === 0, `pages wider than the window:\n  ${layoutProblems.join('\n  ')}`);
    check(pageErrors.length === 0, `uncaught JavaScript errors on the pages:\n  ${pageErrors.join('\n  ')}`);
  } catch (e) {
    failed = e;
    // The page where a step failed (the final checks only report what was collected).
    if (!current.startsWith('accessibility, layout')) try {
      const file = join(SHOTS, 'FAILURE.png');
      await page.screenshot({ path: file, fullPage: true });
      writeFileSync(join(SHOTS, 'FAILURE.html'), await page.content());
      info(`failure page: ${page.url()} (saved ${file} and FAILURE.html)`);
    } catch {
      // The page may be gone; the message below is what counts.
    }
  } finally {
    await browser.close().catch(() => {});
  }
  if (failed) {
    console.error(`\n[e2e] FAILED at step ${stepNo} (${current}):\n${failed instanceof Check ? failed.message : failed.stack}`);
    process.exit(1);
  }
  console.log(`[e2e] PASSED: ${stepNo} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
}

main().catch((e) => {
  console.error(`[e2e] FAILED (${current}): ${e.stack || e}`);
  process.exit(1);
});
