// Tandem playground: a chat that shows how each answer was routed.
//
// Every call goes to the router's own endpoints with the pasted key (sessionStorage only, never
// localStorage or a cookie), so the page sees nothing a client with that key could not.
// Model output and server messages are inserted as text (textContent), never as HTML.
"use strict";

const KEY_STORAGE = "tandem.apiKey";
const WHY_DEBOUNCE_MS = 400;
const LIVE_REFRESH_MS = 5000;
const LIVE_ROWS = 15;

const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  history: [],        // the conversation sent with each request
  controller: null,   // AbortController of the answer being streamed
  prices: {},         // fallback model -> {input_per_mtok, output_per_mtok}
  domains: [],        // routing domains, learned from /v1/route
  whySeq: 0,          // to drop "why this route?" answers that arrive out of order
  liveTimer: null,
  locked: false,      // the router refused the key: stop polling until a new key is given
};

// ---------- HTTP ----------

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function headers(json = true) {
  const h = json ? { "Content-Type": "application/json" } : {};
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

class ApiError extends Error {
  // An error in the OpenAI shape: {"error": {"message", "type", "param", "code"}}.
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.type = err.type || "http_error";
    this.code = err.code || null;
    this.param = err.param || null;
    this.body = body;
  }
}

async function readError(response) {
  const text = await response.text();
  try {
    return new ApiError(response.status, JSON.parse(text));
  } catch {
    return new ApiError(response.status, { error: { message: text || response.statusText, type: "http_error" } });
  }
}

async function api(path, body) {
  const init = body === undefined ? { headers: headers(false) }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) };
  const response = await fetch(path, init);
  if (!response.ok) {
    const error = await readError(response);
    if (response.status === 401) keyRefused(error);
    throw error;
  }
  return response.json();
}

// ---------- small rendering helpers ----------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function pct(x) {
  return x === null || x === undefined ? "n/a" : `${(100 * x).toFixed(0)}%`;
}

function renderBars(container, values, highlight) {
  // values: {name: fraction 0..1}; one labelled bar per entry, largest first.
  container.replaceChildren();
  const entries = Object.entries(values).sort((a, b) => b[1] - a[1]);
  for (const [name, value] of entries) {
    const row = el("div", null, "bar-row" + (name === highlight ? " chosen" : ""));
    row.append(el("span", name, "bar-label"));
    const track = el("span", null, "bar-track");
    track.setAttribute("aria-hidden", "true");
    const fill = el("span", null, "bar-fill");
    fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
    track.append(fill);
    row.append(track, el("span", pct(value), "bar-value"));
    container.append(row);
  }
}

function renderError(box, error) {
  // The OpenAI error shape, as the router sent it: status, type, code, param, message.
  box.hidden = false;
  box.setAttribute("role", "alert");
  box.replaceChildren();
  const where = typeof error.status === "number" && error.status > 0 ? `HTTP ${error.status}`
    : error.status === "stream" ? "Error during the stream" : "No response";
  const parts = [where, error.type, error.code].filter(Boolean).join(" · ");
  box.append(el("strong", parts, "error-title"));
  if (error.param) box.append(el("span", ` (param: ${error.param})`));
  box.append(el("p", error.message, "error-message"));
  if (error.body) box.append(el("pre", JSON.stringify(error.body, null, 2), "error-json"));
}

function addFact(dl, term, value, name) {
  const dt = el("dt", term);
  const dd = el("dd", value);
  if (name) dd.dataset.fact = name;
  dl.append(dt, dd);
}

// ---------- API key ----------

function keyRefused(error) {
  state.locked = true;
  $("#key-status").textContent = `The router refused the key: ${error.message}`;
}

async function useKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  state.locked = false;
  $("#api-key").value = "";
  $("#api-key").placeholder = apiKey() ? "a key is set for this tab" : "paste a key (kept in this tab only)";
  await loadModels();
}

async function loadModels() {
  const status = $("#key-status");
  try {
    const models = await api("/v1/models");
    const list = $("#model-options");
    list.replaceChildren();
    for (const card of models.data) list.append(new Option(card.id, card.id));
    status.textContent = `Connected: ${models.data.length} models.`;
    state.prices = (await api("/v1/prices")).models;
    refreshLive();
    scheduleLive();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      status.textContent = "This router needs an API key: paste one above.";
    } else {
      status.textContent = `Cannot list models: ${error.message}`;
    }
  }
}

// ---------- "Why this route?" ----------

let whyTimer = null;

function scheduleWhy() {
  clearTimeout(whyTimer);
  whyTimer = setTimeout(explainRoute, WHY_DEBOUNCE_MS);
}

function draftMessages(text) {
  return [...state.history, { role: "user", content: text }];
}

async function explainRoute() {
  const text = $("#prompt").value.trim();
  const summary = $("#why-summary");
  const bars = $("#why-bars");
  const seq = ++state.whySeq;
  if (!text || state.locked) {
    summary.textContent = "Type a message to see where auto would send it.";
    bars.replaceChildren();
    return;
  }
  try {
    const decision = await api("/v1/route", { model: "auto", messages: draftMessages(text) });
    if (seq !== state.whySeq) return;
    learnDomains(decision);
    const escalation = decision.escalate ? ` It would escalate to the fallback (${decision.escalation_reason}).` : "";
    summary.textContent = `auto would send this to ${decision.target}: domain ${decision.domain}, ` +
      `confidence ${pct(decision.confidence)}.${escalation}${decision.reason ? ` Reason: ${decision.reason}.` : ""}`;
    summary.dataset.target = decision.target;
    renderBars(bars, decision.probabilities, decision.domain);
  } catch (error) {
    if (seq !== state.whySeq) return;
    summary.textContent = `No routing decision: ${error.message}`;
    bars.replaceChildren();
  }
}

function learnDomains(decision) {
  if (state.domains.length === 0 && decision.probabilities) state.domains = Object.keys(decision.probabilities);
}

// ---------- chat ----------

function appendUser(text) {
  const item = el("li", null, "message user");
  item.append(el("div", "You", "who"), el("div", text, "content"));
  $("#messages").append(item);
}

function appendAnswer() {
  const item = $("#answer-template").content.firstElementChild.cloneNode(true);
  $("#messages").append(item);
  return item;
}

function factsFromHeaders(h) {
  if (!h.get("x-tandem-route")) return null;
  return {
    route: h.get("x-tandem-route"),
    domain: h.get("x-tandem-domain"),
    confidence: Number(h.get("x-tandem-confidence")),
    cache: h.get("x-tandem-cache"),
    escalated: h.get("x-tandem-escalated") === "true",
    escalationReason: h.get("x-tandem-escalation-reason") || "",
    escalationRefused: h.get("x-tandem-escalation-refused") || "",
    requestId: h.get("x-tandem-request-id") || "",
  };
}

async function* sseEvents(response) {
  // The `data:` payloads of an SSE stream, one parsed JSON object at a time.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function setBusy(busy) {
  $("#send").disabled = busy;
  $("#stop").disabled = !busy;
}

function numberInput(selector) {
  const input = $(selector);
  if (!input.checkValidity() || input.value === "") return null;
  return Number(input.value);
}

async function send() {
  const text = $("#prompt").value.trim();
  if (!text || state.controller) return;
  const model = $("#model").value.trim() || "auto";
  const messages = draftMessages(text);
  const body = { model, messages, stream: true, stream_options: { include_usage: true } };
  const temperature = numberInput("#temperature");
  const maxTokens = numberInput("#max-tokens");
  if (temperature !== null) body.temperature = temperature;
  if (maxTokens !== null) body.max_tokens = maxTokens;
  const stopAt = $("#stop-at").value.replaceAll("\\n", "\n");
  if (stopAt) body.stop = [stopAt];

  appendUser(text);
  $("#prompt").value = "";
  const item = appendAnswer();
  item.dataset.state = "waiting";
  item.setAttribute("aria-busy", "true"); // screen readers announce the answer once, when it is complete
  const content = $(".content", item);
  const routeView = api("/v1/route", { model: "auto", messages }).catch(() => null);
  state.controller = new AbortController();
  setBusy(true);

  const timing = { start: performance.now(), first: null, end: null };
  let usage = null;
  let facts = null;
  let answer = "";
  let chunks = 0;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), body: JSON.stringify(body), signal: state.controller.signal,
    });
    facts = factsFromHeaders(response.headers);
    if (!response.ok) {
      const error = await readError(response);
      if (response.status === 401) keyRefused(error);
      throw error;
    }
    item.dataset.state = "streaming";
    for await (const event of sseEvents(response)) {
      if (event.error) throw new ApiError("stream", event); // the stream broke after a 200 (worker failed, deadline)
      if (event.usage) usage = event.usage;
      const delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (delta && delta.content) {
        if (timing.first === null) timing.first = performance.now();
        answer += delta.content;
        chunks += 1;
        content.textContent = answer;
      }
    }
    timing.end = performance.now();
    item.dataset.state = "done";
    state.history.push({ role: "user", content: text }, { role: "assistant", content: answer });
  } catch (error) {
    timing.end = performance.now();
    if (error.name === "AbortError") {
      item.dataset.state = "stopped";
      content.textContent = `${answer} [stopped]`;
    } else {
      item.dataset.state = "error";
      const apiError = error instanceof ApiError ? error
        : new ApiError(0, { error: { message: `Could not reach the router: ${error.message}`, type: "network_error" } });
      renderError($(".error-box", item), apiError);
    }
  } finally {
    state.controller = null;
    setBusy(false);
  }
  renderFacts(item, facts, timing, usage, chunks, await routeView, model);
  item.dataset.settled = "true";
  item.setAttribute("aria-busy", "false");
  refreshLive();
}

function renderFacts(item, facts, timing, usage, chunks, decision, model) {
  const dl = $(".facts", item);
  dl.replaceChildren();
  if (facts) {
    addFact(dl, "Route", facts.route, "route");
    addFact(dl, "Domain", `${facts.domain} (${pct(facts.confidence)})`, "domain");
    const cache = { hit: "cache hit", semantic: "cache hit (similar prompt)", miss: "cache miss",
      bypass: "not cached (sampled or no-cache)" }[facts.cache] || facts.cache;
    addFact(dl, "Cache", cache, "cache");
    let escalation = "no";
    if (facts.escalated) escalation = `yes: ${facts.escalationReason || "escalated"}`;
    else if (facts.escalationRefused) escalation = `wanted, refused (${facts.escalationRefused}); local answer`;
    addFact(dl, "Escalated", escalation, "escalation");
  }
  if (timing.first !== null) {
    addFact(dl, "Time to first token", `${(timing.first - timing.start).toFixed(0)} ms`, "ttft");
    const tokens = usage ? usage.completion_tokens : chunks;
    const seconds = (timing.end - timing.first) / 1000;
    const rate = facts && facts.cache !== "miss" && facts.cache !== "bypass" ? "replayed from cache"
      : seconds > 0 ? `${(tokens / seconds).toFixed(1)} tokens/s (${tokens} tokens)` : `${tokens} tokens`;
    addFact(dl, "Speed", rate, "speed");
  }
  const answered = item.dataset.state === "done" || item.dataset.state === "stopped";
  if (facts && answered && facts.escalated) {
    const price = state.prices[facts.route];
    const cost = price && usage ? (usage.prompt_tokens * price.input_per_mtok +
      usage.completion_tokens * price.output_per_mtok) / 1e6 : null;
    addFact(dl, "Cost", cost === null ? "unknown (no price or usage)" : `$${cost.toFixed(6)}`, "cost");
  } else if (facts && answered) {
    addFact(dl, "Cost", "local: no API cost", "cost");
  }
  if (facts && facts.requestId) addFact(dl, "Request id", facts.requestId, "request-id");

  const bars = $(".probabilities", item);
  if (decision) {
    learnDomains(decision);
    const caption = model === "auto" ? "Router probabilities" : `Router probabilities (not used: model ${model} was asked for)`;
    bars.replaceChildren(el("div", caption, "bars-caption"));
    const holder = el("div");
    renderBars(holder, decision.probabilities, facts ? facts.domain : decision.domain);
    bars.append(holder);
  }
  if (facts && facts.requestId && item.dataset.state === "done") enableFeedback(item, facts);
}

// ---------- feedback ----------

function enableFeedback(item, facts) {
  const box = $(".feedback", item);
  const select = $(".correct-domain", box);
  select.replaceChildren();
  for (const domain of state.domains) {
    if (domain !== facts.domain) select.append(new Option(domain, domain));
  }
  box.hidden = false;
  const status = $(".feedback-status", box);
  const post = async (payload, done) => {
    try {
      const result = await api("/v1/feedback", { request_id: facts.requestId, ...payload });
      status.textContent = done(result);
      status.dataset.result = "ok";
    } catch (error) {
      status.textContent = `Feedback not recorded: ${error.message}`;
      status.dataset.result = "error";
    }
  };
  for (const button of box.querySelectorAll(".thumb")) {
    button.addEventListener("click", () => {
      const rating = Number(button.dataset.rating);
      for (const other of box.querySelectorAll(".thumb")) other.setAttribute("aria-pressed", String(other === button));
      post({ rating }, () => `Thanks: rated ${rating > 0 ? "good" : "bad"}.`);
    });
  }
  $(".wrong-domain", box).addEventListener("click", () => {
    const correct = select.value;
    if (!correct) return;
    post({ correct_domain: correct },
      (r) => `Thanks: the router said ${r.predicted_domain}, you said ${correct}.`);
  });
}

// ---------- live panel ----------

function scheduleLive() {
  clearInterval(state.liveTimer);
  state.liveTimer = setInterval(() => {
    if (document.visibilityState === "visible" && !state.locked) refreshLive();
  }, LIVE_REFRESH_MS);
}

async function refreshLive() {
  if (state.locked) return;
  let recent;
  try {
    recent = await api(`/v1/recent?limit=${LIVE_ROWS}`);
  } catch {
    return; // the key status line already says why
  }
  const t = recent.totals;
  const totals = $("#totals");
  totals.replaceChildren();
  addFact(totals, "Requests", t.requests, "requests");
  addFact(totals, "Cache hit rate", pct(t.cache_hit_rate), "cache-hit-rate");
  addFact(totals, "Escalation rate", pct(t.escalation_rate), "escalation-rate");
  addFact(totals, "Errors", t.errors, "errors");
  const shares = {};
  for (const [domain, n] of Object.entries(t.domains)) shares[domain] = n / t.requests;
  renderBars($("#domain-counts"), shares);

  const body = $("#recent tbody");
  body.replaceChildren();
  for (const d of recent.data) {
    const row = document.createElement("tr");
    row.dataset.requestId = d.request_id;
    const when = new Date(d.at * 1000).toLocaleTimeString([], { hour12: false });
    const escalated = d.escalated ? `yes: ${d.escalation_reason}` : d.escalation_refused ? "refused" : "no";
    for (const cell of [when, d.route, `${d.domain} ${pct(d.confidence)}`, d.cache, escalated, d.status]) {
      row.append(el("td", cell));
    }
    body.append(row);
  }
}

// ---------- wiring ----------

function init() {
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey($("#api-key").value.trim());
  });
  $("#forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    useKey("");
  });
  $("#chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("#prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.controller) state.controller.abort();
  });
  $("#prompt").addEventListener("input", scheduleWhy);
  $("#stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("#new-chat").addEventListener("click", () => {
    state.history = [];
    $("#messages").replaceChildren();
    $("#prompt").focus();
  });
  $("#refresh-live").addEventListener("click", refreshLive);
  useKey("");
}

init();
