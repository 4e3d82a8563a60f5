import { existsSync, mkdirSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../console/build";
import { DATASET_TEAM, DATASET_USER, type LocalPlatform, startLocalPlatform } from "./local-platform";

// The console (console/, docs/console.md) in a real browser: Debian's
// Chromium driven by playwright-core against the platform served as for a
// deploy (static assets and all). A newcomer's path: sign in with a demo
// token, search the directory, watch a message posted through the API arrive
// live, open recommendations with names and reasons, and (as an admin) the
// Slack Connect views. Screenshots go to docs/images/console-*.png.
//
// Without /usr/bin/chromium the suite is skipped with one line saying how to
// get it; under CI (CI=true), where .ci/run installs it, a missing browser
// fails instead: CI must run it.

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
const inCI = process.env.CI === "true" || process.env.CI === "1";
if (!hasChromium && !inCI) {
  console.log(`console browser test skipped: no ${CHROMIUM}; install Debian's chromium with: npm run setup:browser`);
}

const SHOTS = "docs/images";
const PARTNER = { team: "TPARTNER", user: "UPARTNER" };

let platform: LocalPlatform;
let browser: Browser;

async function call(token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${platform.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} -> ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** A partner team connected to the demo team, with one partner-level pref, for the admin views. */
async function seedConnection(): Promise<void> {
  await call(platform.operator, "POST", "/v1/admin/teams", {
    id: PARTNER.team,
    name: "Partner Co",
    claimed_domains: ["partnerco.example"],
  });
  await call(platform.operator, "POST", `/v1/admin/teams/${PARTNER.team}/users`, {
    id: PARTNER.user,
    email: "pat@partnerco.example",
    role: "owner",
  });
  const { invitation } = (await call(platform.admin, "POST", "/v1/connect/invitations", {})) as {
    invitation: { code: string };
  };
  const partner = await platform.token(PARTNER.team, PARTNER.user);
  await call(partner, "POST", "/v1/connect/invitations/answer", { code: invitation.code, decision: "accept" });
  await call(platform.admin, "PATCH", `/v1/connect/prefs/partners/${PARTNER.team}`, {
    file_uploads: { allowed: false, max_bytes: 0, blocked_types: [] },
  });
}

/** A fresh browser profile on the console; every console error and page error is kept (a CSP refusal is one). */
async function open(path: string): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${platform.url}${path}`);
  return { context, page, problems };
}

describe.skipIf(!hasChromium && !inCI)("console in Chromium", () => {
  beforeAll(async () => {
    expect(hasChromium, `CI must run the console's browser test: no ${CHROMIUM} (npm run setup:browser)`).toBe(true);
    mkdirSync(SHOTS, { recursive: true });
    await buildConsole();
    platform = await startLocalPlatform("console-chromium-test", { dataset: true });
    await seedConnection();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
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
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await platform?.close();
  });

  it("serves the page with a same-origin-only CSP", async () => {
    const res = await fetch(`${platform.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    // The API is the Worker's as before: a path that is no file is not the console.
    expect((await fetch(`${platform.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${platform.url}/_headers`)).status).not.toBe(200);
  });

  it("signs a member in, searches, and shows a message posted through the API live", async () => {
    const { context, page, problems } = await open("/");
    try {
      await page.getByRole("heading", { name: "Sign in" }).waitFor();
      await page.screenshot({ path: `${SHOTS}/console-sign-in.png` });

      // A wrong token is refused by the server, with a way forward.
      await page.locator("#token").fill("a.b.c");
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.locator("#sign-in-error").textContent()).toMatch(/not an access token|refused/);

      await page.locator("#token").fill(platform.member);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.locator("#whoami", { hasText: "Max Müller (member)" }).waitFor();
      await page.locator("#rt-status[data-state='open']").waitFor();
      // Not an admin: no admin tab.
      expect(await page.locator("#admin-tab").isHidden()).toBe(true);

      await page.locator("#switcher").fill("eng");
      await page.locator("#switcher-results li", { hasText: "#eng-backend" }).waitFor();
      await page.locator("#switcher-results li", { hasText: "#eng-frontend" }).waitFor();
      await page.locator("#people-q").fill("ada");
      await page.locator("#people tr", { hasText: "Ada Lovelace" }).waitFor();
      await page.locator("#switcher-results button", { hasText: "#eng-backend" }).click();
      await page.locator("#channel-card", { hasText: "APIs and storage" }).waitFor();
      await page.screenshot({ path: `${SHOTS}/console-directory.png` });

      // Posted by someone else through the API while the page watches #general.
      const text = "Welcome to the console!";
      await call(platform.admin, "POST", "/v1/channels/CGENERAL/messages", { text });
      const item = page.locator("#live-events li[data-type='message']", { hasText: text });
      await item.waitFor();
      // The author's name came with the event (a just-in-time profile frame).
      expect(await item.textContent()).toContain("Ada Lovelace");
      expect(await item.textContent()).toContain("#general");

      // And one posted from the page's own composer comes back the same way.
      await page.locator("#compose-channel").selectOption("CENGFRONT");
      await page.locator("#compose-text").fill("Posted from the console");
      await page.getByRole("button", { name: "Post" }).click();
      await page.locator("#live-events li", { hasText: "Posted from the console" }).waitFor();
      await page.screenshot({ path: `${SHOTS}/console-live.png` });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("shows recommendations with names and why each was chosen", async () => {
    // The dataset team has a feature snapshot; the sign-in link form (#token=) this time.
    const token = await platform.token(DATASET_TEAM, DATASET_USER);
    const { context, page, problems } = await open(`/#token=${token}`);
    try {
      await page.locator("#whoami", { hasText: `team ${DATASET_TEAM}` }).waitFor();
      // The token left the address bar at once.
      expect(page.url()).not.toContain("token=");
      await page.getByRole("tab", { name: "Recommendations" }).click();
      const items = page.locator("#rec-items li");
      await items.first().waitFor();
      expect(await items.count()).toBe(10);
      const first = (await items.first().textContent()) ?? "";
      // A name from the directory lookup, not a bare id, and the reason.
      expect(first).toMatch(/#\S+/);
      expect(first).toMatch(/Why: a channel you can see, not archived, that you have not joined/);
      expect(first).toMatch(/ranked #1 of \d+ by channel_browser-/);
      expect(await page.locator("#rec-meta").textContent()).toContain("channel_browser");
      // Where the API explains an item (its `reason`), the page says it too.
      const api = (await call(token, "POST", "/v1/recommend", { source: "channel_browser", limit: 10 })) as {
        items: Array<{ id: string; reason?: { feature: string } | null }>;
      };
      const explained = api.items.find((i) => i.reason);
      if (explained?.reason) {
        const text = await page.locator(`#rec-items li[data-id="${explained.id}"]`).textContent();
        expect(text).toContain(explained.reason.feature);
      }
      await page.screenshot({ path: `${SHOTS}/console-recommendations.png`, fullPage: true });

      await page.locator("#rec-source").selectOption("composer_dm");
      await page.getByRole("button", { name: "Recommend" }).click();
      await page.locator("#rec-items li .why", { hasText: "an active person you can see" }).first().waitFor();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("shows an admin the Slack Connect connections and prefs", async () => {
    const { context, page, problems } = await open(`/#token=${platform.admin}`);
    try {
      await page.locator("#whoami", { hasText: "Ada Lovelace (owner)" }).waitFor();
      await page.getByRole("tab", { name: "Slack Connect (admin)" }).click();
      const row = page.locator("#connections tr", { hasText: "Partner Co" });
      await row.waitFor();
      expect(await row.textContent()).toContain("accepted");
      await page.locator("#org-prefs tr", { hasText: "channel_creation" }).waitFor();
      await row.getByRole("button", { name: "Prefs" }).click();
      const uploads = page.locator("#partner-prefs tr", { hasText: "file_uploads" });
      await uploads.waitFor();
      expect(await uploads.textContent()).toContain("partner");
      await page.locator("#audit li", { hasText: "file_uploads" }).waitFor();
      await page.screenshot({ path: `${SHOTS}/console-admin.png`, fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
