// Drives the admin dashboard in headless Chromium against a real payhook-ingest process
// on 127.0.0.1 with a temporary SQLite database.
//
// Environment: PAYHOOK_INGEST_BIN (path of the built binary, required) and
// CHROMIUM_PATH (default /usr/bin/chromium).
"use strict";

const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { test } = require("node:test");
const { chromium } = require("playwright-core");

const STRIPE_SECRET = "whsec_payhook_browser_test";
const ADMIN_TOKEN = "browser-admin-token-71f3";
const TIMEOUT_MS = 15000;
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Environment for the service: this process's variables without any payhook settings,
// so a developer's shell cannot point the test at another database or broker.
function serviceEnvironment(settings) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(PAYHOOK_|ConnectionStrings__|WebhookProcessorSettings__)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...settings };
}

async function startService() {
  const binary = process.env.PAYHOOK_INGEST_BIN;
  assert.ok(binary, "PAYHOOK_INGEST_BIN must name the payhook-ingest binary");
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "payhook-browser-"));
  const publicPort = await freePort();
  const adminPort = await freePort();
  const child = spawn(binary, ["run"], {
    env: serviceEnvironment({
      PAYHOOK_LISTEN: `127.0.0.1:${publicPort}`,
      PAYHOOK_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      PAYHOOK_DATABASE_URL: `sqlite://${path.join(directory, "payhook.db")}`,
      PAYHOOK_STRIPE_SECRETS: STRIPE_SECRET,
      PAYHOOK_ADMIN_TOKEN: ADMIN_TOKEN,
      PAYHOOK_POLL_INTERVAL_MS: "50",
      PAYHOOK_LOG_FORMAT: "text",
      RUST_LOG: "warn",
    }),
    stdio: ["ignore", "inherit", "inherit"],
  });
  const service = {
    child,
    directory,
    publicUrl: `http://127.0.0.1:${publicPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
  };
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    assert.equal(child.exitCode, null, "payhook-ingest exited during start-up");
    try {
      const response = await fetch(`${service.adminUrl}/health/ready`);
      if (response.ok) return service;
    } catch (_) {
      // Not listening yet.
    }
    assert.ok(Date.now() < deadline, "payhook-ingest did not become ready");
    await sleep(100);
  }
}

async function stopService(service) {
  if (service.child.exitCode === null) {
    const exited = new Promise((resolve) => service.child.once("exit", resolve));
    service.child.kill("SIGTERM");
    await exited;
  }
  fs.rmSync(service.directory, { recursive: true, force: true });
}

// Posts a Stripe event signed the way Stripe signs: HMAC-SHA256 of "timestamp.body".
async function postStripe(service, event) {
  const body = JSON.stringify(event);
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = crypto
    .createHmac("sha256", STRIPE_SECRET)
    .update(`${timestamp}.${body}`)
    .digest("hex");
  const response = await fetch(`${service.publicUrl}/api/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": `t=${timestamp},v1=${signature}` },
    body,
  });
  const json = await response.json();
  assert.equal(response.status, 200, JSON.stringify(json));
  return json.id;
}

async function adminGet(service, pathAndQuery) {
  const response = await fetch(`${service.adminUrl}${pathAndQuery}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  assert.equal(response.status, 200, pathAndQuery);
  return response.json();
}

async function waitForEvent(service, id, description, check) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const detail = await adminGet(service, `/api/webhooks/events/${id}`);
    if (check(detail)) return detail;
    assert.ok(Date.now() < deadline, `event ${id} did not reach ${description}: ${JSON.stringify(detail)}`);
    await sleep(50);
  }
}

function paymentSucceeded(eventId, amount) {
  return {
    id: eventId,
    object: "event",
    created: 1764000200,
    type: "payment_intent.succeeded",
    data: {
      object: {
        id: `pi_browser_${eventId}`,
        object: "payment_intent",
        amount,
        amount_received: amount,
        currency: "usd",
        customer: "cus_browserBuyer",
        latest_charge: `ch_browser_${eventId}`,
        status: "succeeded",
      },
    },
  };
}

test("dashboard filters, opens and replays an event", { timeout: 120000 }, async () => {
  const service = await startService();
  let browser;
  try {
    const payId = await postStripe(service, paymentSucceeded("evt_browser_pay_1", 2000));
    const otherPayId = await postStripe(service, paymentSucceeded("evt_browser_pay_2", 750));
    // An event id with markup: the page must show it as text, never parse it.
    const markupEventId = 'evt_browser_<img src=x onerror="window.injected=1">';
    const markupId = await postStripe(service, {
      id: markupEventId,
      object: "event",
      created: 1764000300,
      type: "customer.created",
      data: { object: { id: "cus_browser_1", object: "customer" } },
    });
    for (const id of [payId, otherPayId, markupId]) {
      await waitForEvent(service, id, "completed", (detail) => detail.status === "completed");
    }
    const before = await adminGet(service, `/api/webhooks/events/${payId}`);

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_FLAGS,
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    const offHostRequests = [];
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.hostname !== "127.0.0.1") {
        offHostRequests.push(url.href);
        return route.abort();
      }
      return route.continue();
    });
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const dialogs = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      dialog.accept();
    });

    await page.goto(`${service.adminUrl}/`);
    await page.locator("#token-panel").waitFor({ state: "visible" });
    await page.fill("#token-input", "not-the-token");
    await page.click("#token-form button[type=submit]");
    await page.locator("#message.error").waitFor({ state: "visible" });
    await page.locator("#token-panel").waitFor({ state: "visible" });

    await page.fill("#token-input", ADMIN_TOKEN);
    await page.click("#token-form button[type=submit]");
    await page.locator("#main").waitFor({ state: "visible" });
    await page.locator("#stat-total .value", { hasText: "3" }).waitFor();
    assert.equal(await page.textContent("#stat-completed .value"), "3");
    assert.equal(await page.textContent("#stat-success-rate .value"), "100.00 %");
    assert.equal(
      await page.evaluate(() => sessionStorage.getItem("payhook.adminToken")),
      ADMIN_TOKEN,
    );

    const markupRow = page.locator(`#event-rows tr[data-event-id="${markupId}"]`);
    assert.equal(await markupRow.locator("td").nth(1).textContent(), markupEventId);
    assert.equal(await page.locator("#event-rows img").count(), 0);
    assert.equal(await page.evaluate(() => window.injected), undefined);

    await page.fill("#filter-event-type", "payment_intent.succeeded");
    await page.click("#apply-filters");
    await page.locator("#event-rows tr").nth(1).waitFor();
    await page.waitForFunction(() => document.querySelectorAll("#event-rows tr").length === 2);
    const shownIds = await page.$$eval("#event-rows tr", (rows) => rows.map((row) => Number(row.dataset.eventId)));
    assert.deepEqual(shownIds.sort(), [payId, otherPayId].sort());
    assert.match(await page.textContent("#page-info"), /\(2 events\)/);

    await page.click(`#event-rows tr[data-event-id="${payId}"] button`);
    await page.locator("#detail").waitFor({ state: "visible" });
    assert.equal(await page.textContent("#detail-status"), "completed");
    assert.equal(await page.locator("#detail-payments tr").count(), 1);
    assert.match(await page.textContent("#detail-payments tr"), /20\.00/);
    assert.ok((await page.locator("#detail-logs tr").count()) >= 1);

    await page.click("#replay-event");
    await page.locator("#message", { hasText: `Webhook event ${payId} queued for replay` }).waitFor();
    assert.equal(dialogs.length, 1);
    assert.match(dialogs[0], new RegExp(`Replay webhook event ${payId}`));

    const replayed = await waitForEvent(
      service,
      payId,
      "completed after the replay",
      (detail) =>
        detail.status === "completed" &&
        detail.processedAt !== before.processedAt &&
        detail.logs.some((log) => log.processingStep === "replay"),
    );
    assert.deepEqual(replayed.paymentEvents, before.paymentEvents, "a replay with the same output adds no payment rows");

    await page.click("#retry-failed");
    await page.locator("#message", { hasText: "Retried 0 failed webhooks" }).waitFor();
    assert.equal(dialogs.length, 2);

    assert.deepEqual(offHostRequests, [], "the dashboard loads nothing from other hosts");
    assert.deepEqual(pageErrors, [], "the dashboard raised no script errors");
  } finally {
    if (browser) await browser.close();
    await stopService(service);
  }
});
