// The demo page: a client of the public HTTP API and nothing more. It reads lists through
// GET /api/v1/recs/{user_id} (or POST /recommend when diversity is on, the one route that
// takes it), posts a click through POST /events, and sends `Authorization: Bearer <key>`
// when a key is set. The recent events are the ones this page posted, kept in localStorage:
// the API has no route that lists a user's events.
"use strict";

const STORE = { key: "recsys-demo.key", users: "recsys-demo.users", events: "recsys-demo.events." };
const MAX_EVENTS = 20;
const MAX_USERS = 12;

const $ = (id) => document.getElementById(id);
let current = null; // the response on screen
let busy = false;

function readJSON(name, fallback) {
  try {
    return JSON.parse(localStorage.getItem(name)) ?? fallback;
  } catch {
    return fallback;
  }
}

function writeJSON(name, value) {
  localStorage.setItem(name, JSON.stringify(value));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- The API, as an external client calls it ------------------------------------------

function describeError(status, data) {
  const detail = data && typeof data === "object" ? data.detail : data;
  let text;
  if (Array.isArray(detail)) {
    text = detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  } else {
    text = typeof detail === "string" ? detail : JSON.stringify(data);
  }
  if (status === 401 || status === 403) text += " (set an API key above)";
  return `HTTP ${status}: ${text}`;
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = $("key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  // Relative paths, so the page works under any prefix the service is mounted at.
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the error message
  }
  if (!response.ok) throw new Error(describeError(response.status, data));
  return data;
}

function chosenCategories() {
  return $("category").value.split(",").map((c) => c.trim()).filter(Boolean);
}

function recommendationRequest(user) {
  const n = Math.min(100, Math.max(1, parseInt($("limit").value, 10) || 10));
  const categories = chosenCategories();
  if ($("diversity-on").checked) {
    const body = { user_id: user, num_items: n, diversity: Number($("diversity").value) };
    if (categories.length) body.filters = { categories };
    return { method: "POST", path: "recommend", body };
  }
  const params = new URLSearchParams({ limit: String(n) });
  categories.forEach((c) => params.append("category", c));
  return { method: "GET", path: `api/v1/recs/${encodeURIComponent(user)}?${params}` };
}

function newEventId() {
  if (window.crypto && crypto.randomUUID) return `demo-${crypto.randomUUID()}`;
  return `demo-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

// --- Showing it -----------------------------------------------------------------------

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function setBusy(value) {
  busy = value;
  $("cards").setAttribute("aria-busy", String(value));
  $("show").disabled = value;
}

function renderMeta(response) {
  const flags = [
    ["model_version", "model version", response.model_version, ""],
    ["variant", "variant", response.variant ?? "none", ""],
    ["experiment_id", "experiment", response.experiment_id ?? "none", ""],
    ["fallback", "fallback",
      response.fallback ? `yes: ${response.fallback_reason || "unspecified"}` : "no",
      response.fallback ? "warn" : "good"],
    ["cached", "cached", response.cached ? "yes" : "no", ""],
    ["latency_ms", "latency", `${Number(response.latency_ms).toFixed(1)} ms`, ""],
  ];
  $("meta").replaceChildren(...flags.map(([name, label, value, tone]) => {
    const flag = el("span", `flag ${tone}`.trim());
    flag.dataset.flag = name;
    flag.append(el("span", "label", label), el("span", "value", String(value)));
    return flag;
  }));
}

function card(item, rank, before, comparing) {
  const button = el("button", "card");
  button.type = "button";
  button.dataset.itemId = item.item_id;
  button.title = "Click: post a click event for this item, then refresh";
  const old = before.get(item.item_id);

  const head = el("div", "card-head");
  head.append(el("span", "rank", `#${rank + 1}`), el("span", "title", item.title || item.item_id));
  if (comparing && !old) {
    head.append(el("span", "badge new", "new"));
    button.classList.add("is-new");
  }
  const ids = el("div", "ids", item.item_id);
  if (item.price !== null && item.price !== undefined) {
    ids.append(` · ${Number(item.price).toFixed(2)}`);
  }
  const chips = el("div", "chips");
  (item.categories || []).forEach((c) => chips.append(el("span", "chip", c)));
  const score = el("div", "score");
  score.append(el("span", "label", "score "), el("span", "value", Number(item.score).toFixed(3)));
  const reason = el("div", "reason", item.reason);
  button.append(head, ids, chips, score, reason);
  if (old && old.reason !== item.reason) {
    button.classList.add("reason-changed");
    const was = el("div", "was");
    was.append("was: ", el("del", "", old.reason));
    button.append(was);
  }
  button.addEventListener("click", () => click(item));
  const li = el("li");
  li.append(button);
  return li;
}

function learnCategories(items) {
  const list = $("known-categories");
  const known = new Set([...list.options].map((o) => o.value));
  items.flatMap((item) => item.categories || []).forEach((c) => {
    if (!known.has(c)) {
      known.add(c);
      list.append(new Option(c, c));
    }
  });
}

function render(response, previous) {
  const before = new Map((previous ? previous.items : []).map((item) => [item.item_id, item]));
  $("cards").replaceChildren(
    ...response.items.map((item, rank) => card(item, rank, before, previous !== null)));
  if (!response.items.length) $("cards").append(el("li", "empty", "No items match."));
  renderMeta(response);
  learnCategories(response.items);
}

function rememberUser(user) {
  const users = [user, ...readJSON(STORE.users, []).filter((u) => u !== user)].slice(0, MAX_USERS);
  writeJSON(STORE.users, users);
  $("known-users").replaceChildren(...users.map((u) => new Option(u, u)));
}

function renderEvents() {
  const user = $("user").value.trim();
  const events = user ? readJSON(STORE.events + user, []) : [];
  const list = $("events");
  list.replaceChildren(...events.map((event) => {
    const li = el("li", event.ok ? "ok" : "failed");
    li.dataset.itemId = event.item_id;
    li.dataset.eventType = event.event_type;
    const when = new Date(event.timestamp).toLocaleTimeString();
    li.append(el("span", "when", when), el("span", "type", event.event_type),
      el("span", "item", event.title ? `${event.title} (${event.item_id})` : event.item_id),
      el("span", "outcome", event.outcome));
    return li;
  }));
  if (!events.length) list.append(el("li", "empty", "None yet: click a card."));
}

function logEvent(user, entry) {
  const events = [entry, ...readJSON(STORE.events + user, [])].slice(0, MAX_EVENTS);
  writeJSON(STORE.events + user, events);
  renderEvents();
}

// --- What the user does ---------------------------------------------------------------

async function load() {
  const user = $("user").value.trim();
  if (!user) return null;
  const request = recommendationRequest(user);
  $("request").textContent = `${request.method} /${request.path}` +
    (request.body ? ` ${JSON.stringify(request.body)}` : "");
  const cards = $("cards");
  setBusy(true);
  try {
    const response = await call(request.method, request.path, request.body);
    const previous = current && current.user_id === user ? current : null;
    current = response;
    render(response, previous);
    rememberUser(user);
    setStatus("", false);
    cards.dataset.state = "ok";
    return response;
  } catch (error) {
    setStatus(error.message, true);
    cards.dataset.state = "error";
    return null;
  } finally {
    setBusy(false);
    cards.dataset.loads = String(Number(cards.dataset.loads) + 1);
  }
}

async function click(item) {
  if (busy || !current) return;
  const user = current.user_id;
  const event = {
    event_id: newEventId(),
    user_id: user,
    item_id: item.item_id,
    event_type: "click",
    timestamp: new Date().toISOString(), // ISO 8601 in UTC, ending in Z
  };
  setBusy(true);
  let posted = null;
  try {
    posted = await call("POST", "events", event);
  } catch (error) {
    logEvent(user, { ...event, title: item.title, ok: false, outcome: error.message });
    setStatus(error.message, true);
    return;
  } finally {
    setBusy(false);
  }
  logEvent(user, { ...event, title: item.title, ok: true, outcome: `accepted (${posted.accepted})` });
  const after = await load();
  if (after) {
    const gone = !after.items.some((i) => i.item_id === item.item_id);
    setStatus(gone
      ? `Clicked ${item.title || item.item_id}: it is gone from the refreshed list.`
      : `Clicked ${item.title || item.item_id}: it is still listed.`, !gone);
  }
}

function init() {
  const params = new URLSearchParams(location.search);
  if (params.has("key")) {
    localStorage.setItem(STORE.key, params.get("key"));
    params.delete("key"); // keep the key out of the address bar and the history
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
  }
  const key = $("key");
  key.value = localStorage.getItem(STORE.key) || "";
  key.addEventListener("input", () => {
    if (key.value.trim()) localStorage.setItem(STORE.key, key.value.trim());
    else localStorage.removeItem(STORE.key);
  });

  const users = readJSON(STORE.users, []);
  $("known-users").replaceChildren(...users.map((u) => new Option(u, u)));
  $("user").value = params.get("user") || users[0] || "";
  $("user").addEventListener("change", () => {
    current = null;
    renderEvents();
  });
  $("visitor").addEventListener("click", () => {
    $("user").value = `visitor-${Math.random().toString(36).slice(2, 8)}`;
    current = null;
    renderEvents();
    load();
  });
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  const slider = $("diversity");
  $("diversity-on").addEventListener("change", (e) => {
    slider.disabled = !e.target.checked;
    load();
  });
  slider.addEventListener("input", () => { $("diversity-value").value = slider.value; });
  slider.addEventListener("change", load);
  renderEvents();
  load();
}

init();
