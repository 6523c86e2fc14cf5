// ferry's web UI in a real headless Chromium (Debian's /usr/bin/chromium, never a downloaded
// browser), driven by playwright-core. Run by crates/ferry/tests/ui_browser.rs, which sets up
// the cluster, the Git repository, the apps and the ferry processes, and passes:
//
//   FERRY_UI_URL          the server, e.g. http://127.0.0.1:18080
//   FERRY_UI_USER         account to log in with (empty: the server runs --insecure-no-auth)
//   FERRY_UI_PASSWORD     its password
//   FERRY_UI_APP          the app to open (a Deployment, a Service and a Secret; no selfHeal)
//   FERRY_UI_PARENT       the App-of-Apps that manages it
//   FERRY_UI_NAMESPACE    where the app's Deployment lives
//   FERRY_UI_DEPLOYMENT   the Deployment to scale for drift
//   FERRY_UI_SECRET_VALUE a value of the app's Secret, which must never appear in a page
//   FERRY_UI_SCREENSHOTS  where screenshots go
//   KUBECONFIG            for kubectl
//
// Exits 0 when every step passed; prints each step. Waits use deadlines, never fixed sleeps.

import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new Error(`${name} is not set`);
  }
  return v;
};

const base = env("FERRY_UI_URL").replace(/\/$/, "");
const user = env("FERRY_UI_USER", "");
const password = env("FERRY_UI_PASSWORD", "");
const appName = env("FERRY_UI_APP");
const parentName = env("FERRY_UI_PARENT");
const namespace = env("FERRY_UI_NAMESPACE");
const deployment = env("FERRY_UI_DEPLOYMENT");
const secretValue = env("FERRY_UI_SECRET_VALUE");
const shots = env("FERRY_UI_SCREENSHOTS");
const STEP_MS = 90_000;

mkdirSync(shots, { recursive: true });

let stepNo = 0;
const step = (text) => console.log(`[ui-e2e] ${++stepNo}. ${text}`);
const fail = (text) => {
  throw new Error(text);
};
const expect = (cond, text) => {
  if (!cond) fail(text);
};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const pageErrors = [];
let exitCode = 0;

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });

  const shot = async (p, name) => {
    const path = join(shots, `${name}.png`);
    await p.screenshot({ path, fullPage: true });
    console.log(`[ui-e2e]    screenshot ${path}`);
  };

  const noHorizontalOverflow = async (p, what) => {
    const m = await p.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
    }));
    expect(m.scroll <= m.inner, `${what}: the page scrolls horizontally (scrollWidth ${m.scroll} > innerWidth ${m.inner})`);
  };

  // Every form control has a label; every bit of text meets WCAG AA contrast (4.5:1) against
  // the background it is drawn on (badges included); the page has a language, a title and
  // landmarks.
  const accessible = async (p, what) => {
    const problems = await p.evaluate(() => {
      const out = [];
      const rgb = (c) => {
        const m = c.match(/rgba?\(([^)]+)\)/);
        if (!m) return null;
        const [r, g, b, a] = m[1].split(",").map((x) => parseFloat(x));
        return { r, g, b, a: a === undefined ? 1 : a };
      };
      const lum = ({ r, g, b }) => {
        const f = (c) => {
          c /= 255;
          return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c && c.a > 0.5) return c;
        }
        return { r: 255, g: 255, b: 255, a: 1 };
      };
      if (!document.documentElement.lang) out.push("no lang");
      if (!document.title) out.push("no title");
      for (const tag of ["header", "main"]) if (!document.querySelector(tag)) out.push(`no <${tag}>`);
      for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
        if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label")) out.push(`unlabelled ${el.outerHTML.slice(0, 80)}`);
      }
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      const seen = new Set();
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const el = n.parentElement;
        if (!n.textContent.trim() || seen.has(el)) continue;
        seen.add(el);
        const style = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        if (style.visibility === "hidden" || style.display === "none" || box.width <= 1 || box.height <= 1) continue;
        const fg = rgb(style.color);
        if (!fg) continue;
        const bg = background(el);
        const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
        const ratio = (hi + 0.05) / (lo + 0.05);
        if (ratio < 4.5) out.push(`contrast ${ratio.toFixed(2)} for "${n.textContent.trim().slice(0, 40)}" (${style.color} on rgb(${bg.r}, ${bg.g}, ${bg.b}))`);
      }
      return out;
    });
    expect(problems.length === 0, `${what}: accessibility problems:\n${problems.join("\n")}`);
  };

  // --- Log in (or see the insecure banner). ---
  if (user) {
    step(`log in as ${user}`);
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login/, { timeout: STEP_MS });
    await accessible(page, "the login page");
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password").fill(password);
    await Promise.all([
      page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: STEP_MS }),
      page.getByRole("button", { name: "Log in" }).click(),
    ]);
    const who = await page.locator("#user-name").textContent();
    expect(who === user, `the header shows ${who}, not ${user}`);
    expect((await page.locator("#insecure-banner").count()) === 0, "the insecure banner shows with authentication on");
  } else {
    step("no authentication: the insecure banner is shown");
    await page.goto(`${base}/`);
    expect(await page.locator("#insecure-banner").isVisible(), "no insecure banner");
  }

  // --- The list. ---
  step("the list shows both apps with badges");
  await page.goto(`${base}/`);
  expect((await page.title()).includes("Applications"), `title: ${await page.title()}`);
  for (const name of [parentName, appName]) {
    const row = page.locator(`tr[data-app="${name}"]`);
    await row.waitFor({ timeout: STEP_MS });
    const sync = await row.locator('[data-field="sync"]').textContent();
    expect(["Synced", "OutOfSync", "Unknown"].includes(sync), `${name}: sync badge ${sync}`);
  }
  await accessible(page, "the list");
  await shot(page, "list-1280");

  step("the filter narrows the list (a GET form)");
  await page.getByLabel("Name contains").fill(appName);
  await Promise.all([
    page.waitForURL(/[?&]name=/, { timeout: STEP_MS }),
    page.getByRole("button", { name: "Filter" }).click(),
  ]);
  expect(await page.locator(`tr[data-app="${appName}"]`).count() === 1, "the app is not listed after filtering");
  if (!parentName.includes(appName)) {
    expect(await page.locator(`tr[data-app="${parentName}"]`).count() === 0, "the filter did not hide the parent app");
  }

  // --- The App-of-Apps links to its child. ---
  step(`${parentName}'s tree has ${appName} as a child Application linking to its page`);
  await page.goto(`${base}/applications/${parentName}`);
  const childLink = page.locator(`#tree li[data-kind="Application"][data-name="${appName}"] a.name`).first();
  await childLink.waitFor({ timeout: STEP_MS });
  await Promise.all([page.waitForURL(new RegExp(`/applications/${appName}$`)), childLink.click()]);

  // --- The app page and its tree. ---
  step("the app page shows the tree: Deployment → ReplicaSet → Pods, the Service, the Secret");
  const deadline = Date.now() + STEP_MS;
  for (;;) {
    const pods = await page.locator('#tree li[data-kind="Deployment"] li[data-kind="ReplicaSet"] li[data-kind="Pod"]').count();
    const svc = await page.locator('#tree li[data-kind="Service"]').count();
    if (pods >= 1 && svc === 1) break;
    if (Date.now() > deadline) fail(`the tree never showed pods under the Deployment (pods ${pods}, services ${svc})`);
    await page.waitForTimeout(500);
    await page.reload();
  }
  await page.waitForFunction(() => document.documentElement.getAttribute("data-live") === "on", null, { timeout: STEP_MS });
  expect(await page.locator("#history table tbody tr").count() >= 1, "no history row");
  await accessible(page, "the app page");
  await shot(page, "app-1280");

  step("a Secret's manifest is masked");
  const secretPage = await context.newPage();
  await secretPage.goto(page.url());
  await secretPage.locator('#tree li[data-kind="Secret"] a.name').first().click();
  await secretPage.waitForURL(/\/resource\?/);
  const manifest = await secretPage.locator("pre.manifest").textContent();
  expect(manifest.includes("++++++++"), `no mask in the Secret's manifest:\n${manifest}`);
  expect(!(await secretPage.content()).includes(secretValue), "the Secret's value appears in its page");
  expect(!(await secretPage.content()).includes(Buffer.from(secretValue).toString("base64")), "the Secret's base64 value appears in its page");
  await accessible(secretPage, "the Secret's page");
  await shot(secretPage, "secret-1280");

  // --- Drift, seen live. ---
  step(`drift: kubectl scale deployment ${deployment} --replicas=3; the page turns OutOfSync without reloading`);
  await page.evaluate(() => {
    window.__ferryNoReload = true;
  });
  const urlBefore = page.url();
  execFileSync("kubectl", ["scale", `deployment/${deployment}`, "--replicas=3", "-n", namespace], { stdio: "inherit" });
  await page.waitForFunction(() => document.getElementById("sync-status").textContent === "OutOfSync", null, { timeout: STEP_MS });
  step("the tree is reloaded in place: the Deployment's node turns OutOfSync");
  // The tree's Deployment node shows `want` as its sync badge (its text starts with a
  // screen-reader-only "sync: ").
  const deploymentNodeSyncIs = (want) =>
    page.waitForFunction(
      (w) => {
        const b = document.querySelector('#tree li[data-kind="Deployment"] > .node [data-badge="sync"]');
        return !!b && b.textContent.replace("sync: ", "") === w;
      },
      want,
      { timeout: STEP_MS },
    );
  await deploymentNodeSyncIs("OutOfSync");
  expect(await page.evaluate(() => window.__ferryNoReload === true), "the page reloaded");

  step("the diff page shows replicas");
  const diffPage = await context.newPage();
  await diffPage.goto(`${base}/applications/${appName}/diff`);
  const diffText = await diffPage.locator("main").textContent();
  expect(/replicas: 3/.test(diffText) && /replicas: 2/.test(diffText), `the diff does not show replicas 3 → 2:\n${diffText.slice(0, 2000)}`);
  expect(!(await diffPage.content()).includes(secretValue), "the Secret's value appears in the diff");
  await accessible(diffPage, "the diff page");
  await shot(diffPage, "diff-1280");
  await diffPage.setViewportSize({ width: 360, height: 800 });
  await noHorizontalOverflow(diffPage, "the diff with changes at 360 px");
  await shot(diffPage, "diff-changes-360");

  // --- Keyboard: Tab reaches Sync; Enter syncs; SSE shows Synced. ---
  step("keyboard: Tab reaches the Sync button");
  await page.bringToFront();
  await page.evaluate(() => {
    document.activeElement && document.activeElement.blur();
    window.scrollTo(0, 0);
  });
  let reached = false;
  for (let i = 0; i < 60 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id === "sync-button");
  }
  expect(reached, "Tab never reached the Sync button");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  expect(outline !== "none", "the focused Sync button shows no focus outline");
  await shot(page, "app-sync-focused-1280");

  step("press Sync (Enter): the badge turns Synced over server-sent events, without navigation");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("sync-status").textContent === "Synced", null, { timeout: STEP_MS });
  expect(page.url() === urlBefore, `the page navigated to ${page.url()}`);
  await deploymentNodeSyncIs("Synced");
  expect(await page.evaluate(() => window.__ferryNoReload === true), "the page reloaded");
  const replicas = execFileSync("kubectl", ["get", `deployment/${deployment}`, "-n", namespace, "-o", "jsonpath={.spec.replicas}"]).toString();
  expect(replicas === "2", `the Deployment has ${replicas} replicas after the sync, not 2`);
  await shot(page, "app-synced-1280");

  // --- Viewports. ---
  for (const [w, h] of [
    [360, 800],
    [1920, 1080],
  ]) {
    step(`no horizontal scrolling at ${w} px`);
    await page.setViewportSize({ width: w, height: h });
    for (const [path, name] of [
      ["/", "list"],
      [`/applications/${appName}`, "app"],
      [`/applications/${appName}/diff`, "diff"],
    ]) {
      await page.goto(`${base}${path}`);
      await noHorizontalOverflow(page, `${name} at ${w} px`);
      await accessible(page, `${name} at ${w} px`);
      await shot(page, `${name}-${w}`);
    }
  }

  step("with JavaScript off: log in, read the tree, filter, and refresh with a plain form post");
  const noJsContext = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  const noJs = await noJsContext.newPage();
  if (user) {
    await noJs.goto(`${base}/applications/${appName}`);
    await noJs.waitForURL(/\/login/, { timeout: STEP_MS });
    await noJs.getByLabel("Username").fill(user);
    await noJs.getByLabel("Password").fill(password);
    await Promise.all([
      noJs.waitForURL(new RegExp(`/applications/${appName}$`), { timeout: STEP_MS }),
      noJs.getByRole("button", { name: "Log in" }).click(),
    ]);
  } else {
    await noJs.goto(`${base}/applications/${appName}`);
  }
  expect((await noJs.locator('#tree li[data-kind="Pod"]').count()) >= 1, "no Pod in the tree without JavaScript");
  await Promise.all([
    noJs.waitForURL(/done=refresh/, { timeout: STEP_MS }),
    noJs.locator("#refresh-button").click(),
  ]);
  const notice = await noJs.locator("#action-status").textContent();
  expect(notice.includes("Refresh requested"), `no notice after the refresh form: ${notice}`);
  await noJs.goto(`${base}/`);
  await noJs.getByLabel("Sync status").selectOption("Synced");
  await Promise.all([
    noJs.waitForURL(/sync=Synced/, { timeout: STEP_MS }),
    noJs.getByRole("button", { name: "Filter" }).click(),
  ]);
  expect((await noJs.locator(`tr[data-app="${appName}"]`).count()) === 1, "the filtered list lacks the app");
  await shot(noJs, "list-nojs-1280");
  await noJsContext.close();

  if (user) {
    step("log out from the header");
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${base}/`);
    await Promise.all([
      page.waitForURL(/\/login/, { timeout: STEP_MS }),
      page.getByRole("button", { name: "Log out" }).click(),
    ]);
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login\?next=/, { timeout: STEP_MS });
    await shot(page, "login-1280");
  }

  expect(pageErrors.length === 0, `errors in the pages:\n${pageErrors.join("\n")}`);
  step("all steps passed");
} catch (e) {
  console.error(`[ui-e2e] FAILED: ${e && e.stack ? e.stack : e}`);
  if (pageErrors.length) console.error(`[ui-e2e] page errors:\n${pageErrors.join("\n")}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
