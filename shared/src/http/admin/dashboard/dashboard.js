// payhook admin dashboard. Every value from the API is inserted as text (textContent or
// text nodes), never as HTML.
"use strict";

const TOKEN_KEY = "payhook.adminToken";
const state = { page: 1, totalPages: 0, filters: {}, pageSize: "20", selectedId: null };

class UnauthorizedError extends Error {}

function $(id) {
  return document.getElementById(id);
}

// Builds an element whose children are nodes or values shown as text.
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    node.append(child instanceof Node ? child : text(child));
  }
  return node;
}

function text(value) {
  return document.createTextNode(value === null || value === undefined ? "" : String(value));
}

function showMessage(message, isError) {
  const box = $("message");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
}

function askForToken() {
  $("token-panel").hidden = false;
  $("main").hidden = true;
  $("token-input").focus();
}

async function api(method, path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { method, headers });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
    throw new UnauthorizedError("the admin token is missing or wrong");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(response.status + ": " + detail);
  }
  return body;
}

function report(error) {
  if (error instanceof UnauthorizedError) {
    showMessage("Enter the admin token to continue.", true);
  } else {
    showMessage(error.message, true);
  }
}

function formatTime(value) {
  return value ? value.replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}

function formatMs(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2) + " ms";
}

async function loadStatistics() {
  const stats = await api("GET", "/api/webhooks/statistics");
  const cards = [
    ["Total", stats.totalEvents, "stat-total"],
    ["Completed", stats.successfulEvents, "stat-completed"],
    ["Failed", stats.failedEvents, "stat-failed"],
    ["Dead", stats.deadEvents, "stat-dead"],
    ["Pending", stats.pendingEvents, "stat-pending"],
    ["Processing", stats.processingEvents, "stat-processing"],
    ["Success rate", stats.successRate === null ? "–" : stats.successRate.toFixed(2) + " %", "stat-success-rate"],
    ["Average", formatMs(stats.averageProcessingTimeMs), "stat-average"],
    ["p95", formatMs(stats.p95ProcessingTimeMs), "stat-p95"],
  ];
  $("stat-cards").replaceChildren(
    ...cards.map(([label, value, id]) => {
      const card = el("div", "card", el("div", "label", label), el("div", "value", value));
      card.id = id;
      return card;
    }),
  );
  const breakdown = (counts) =>
    Object.entries(counts).map(([name, count]) => el("li", null, name + ": " + count));
  $("by-provider").replaceChildren(...breakdown(stats.eventsByProvider));
  $("by-type").replaceChildren(...breakdown(stats.eventsByType));
}

async function loadEvents() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state.filters)) {
    if (value) params.set(name, value);
  }
  params.set("page", String(state.page));
  params.set("pageSize", state.pageSize);
  const result = await api("GET", "/api/webhooks/events?" + params.toString());
  state.totalPages = result.totalPages;
  const rows = result.events.map((event) => {
    const open = el("button", null, "Open");
    open.type = "button";
    open.dataset.eventId = String(event.id);
    open.addEventListener("click", () => openEvent(event.id).catch(report));
    const row = el(
      "tr",
      null,
      el("td", null, event.id),
      el("td", null, event.eventId),
      el("td", null, event.provider),
      el("td", null, event.eventType),
      el("td", "status-" + event.status, event.status),
      el("td", null, event.attemptCount + " / " + event.maxAttempts),
      el("td", null, formatTime(event.createdAt)),
      el("td", null, formatTime(event.processedAt)),
      el("td", null, open),
    );
    row.dataset.eventId = String(event.id);
    return row;
  });
  $("event-rows").replaceChildren(...rows);
  $("page-info").textContent =
    "Page " + result.page + " of " + Math.max(result.totalPages, 1) + " (" + result.totalCount + " events)";
  $("previous-page").disabled = state.page <= 1;
  $("next-page").disabled = state.page >= result.totalPages;
}

function field(list, name, value) {
  list.append(el("dt", null, name), el("dd", null, value));
}

async function openEvent(id) {
  const detail = await api("GET", "/api/webhooks/events/" + encodeURIComponent(id));
  state.selectedId = detail.id;
  $("detail-title").textContent = "Event " + detail.id;

  const fields = $("detail-fields");
  fields.replaceChildren();
  field(fields, "Event id", detail.eventId);
  field(fields, "Provider", detail.provider);
  field(fields, "Type", detail.eventType);
  const status = el("dd", null, detail.status);
  status.id = "detail-status";
  fields.append(el("dt", null, "Status"), status);
  field(fields, "Attempts", detail.attemptCount + " / " + detail.maxAttempts);
  field(fields, "Error", detail.errorMessage || "");
  field(fields, "Created", formatTime(detail.createdAt));
  field(fields, "Processed", formatTime(detail.processedAt));
  field(fields, "Next retry", formatTime(detail.nextRetryAt));
  field(fields, "Signature key", detail.signatureKeyId || "");
  field(fields, "Source IP", detail.sourceIp || "");

  $("detail-logs").replaceChildren(
    ...detail.logs.map((log) =>
      el(
        "tr",
        null,
        el("td", null, log.id),
        el("td", null, log.processingStep),
        el("td", null, log.status),
        el("td", null, log.durationMs),
        el("td", null, log.errorMessage || ""),
        el("td", null, log.additionalData || ""),
        el("td", null, formatTime(log.processedAt)),
      ),
    ),
  );

  $("detail-payments").replaceChildren(
    ...detail.paymentEvents.map((payment) =>
      el(
        "tr",
        null,
        el("td", null, payment.id),
        el("td", null, payment.paymentId),
        el("td", null, payment.eventType),
        el("td", null, payment.status),
        el("td", null, payment.amount || ""),
        el("td", null, payment.currency || ""),
        el("td", null, payment.customerId || ""),
        el("td", null, payment.orderId || ""),
        el("td", null, payment.transactionId || ""),
        el("td", null, formatTime(payment.createdAt)),
      ),
    ),
  );

  $("detail-payload").hidden = true;
  $("detail-payload").textContent = "";
  $("replay-event").disabled = detail.status === "processing";
  $("detail").hidden = false;
}

async function showPayload() {
  if (state.selectedId === null) return;
  const detail = await api("GET", "/api/webhooks/events/" + state.selectedId + "?include=payload");
  const pre = $("detail-payload");
  let shown = detail.rawPayload;
  try {
    shown = JSON.stringify(JSON.parse(detail.rawPayload), null, 2);
  } catch (_) {
    // Not JSON: show it as received.
  }
  pre.textContent = shown;
  pre.hidden = false;
}

async function replaySelected() {
  const id = state.selectedId;
  if (id === null) return;
  if (!window.confirm("Replay webhook event " + id + "? It is processed again; payment rows are only added when the output differs.")) {
    return;
  }
  const result = await api("POST", "/api/webhooks/events/" + id + "/replay");
  showMessage(result.message, false);
  await refresh();
  await openEvent(id);
}

async function retryFailed() {
  if (!window.confirm("Requeue up to 100 failed and dead webhook events for processing?")) {
    return;
  }
  const result = await api("POST", "/api/webhooks/retry?maxRetries=100");
  showMessage(result.message, false);
  await refresh();
}

async function refresh() {
  await loadStatistics();
  await loadEvents();
  $("token-panel").hidden = true;
  $("main").hidden = false;
}

function readFilters() {
  const form = $("filters");
  const data = new FormData(form);
  state.filters = {
    provider: data.get("provider").trim(),
    status: data.get("status"),
    eventType: data.get("eventType").trim(),
    fromDate: data.get("fromDate"),
    toDate: data.get("toDate"),
  };
  state.pageSize = data.get("pageSize");
  state.page = 1;
}

function start() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-input").value = "";
    $("message").hidden = true;
    refresh().catch(report);
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    readFilters();
    loadEvents().catch(report);
  });
  $("previous-page").addEventListener("click", () => {
    state.page = Math.max(1, state.page - 1);
    loadEvents().catch(report);
  });
  $("next-page").addEventListener("click", () => {
    state.page += 1;
    loadEvents().catch(report);
  });
  $("refresh").addEventListener("click", () => refresh().catch(report));
  $("retry-failed").addEventListener("click", () => retryFailed().catch(report));
  $("replay-event").addEventListener("click", () => replaySelected().catch(report));
  $("show-payload").addEventListener("click", () => showPayload().catch(report));
  $("close-detail").addEventListener("click", () => {
    $("detail").hidden = true;
    state.selectedId = null;
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
  });
  refresh().catch(report);
}

document.addEventListener("DOMContentLoaded", start);
