// logwarden's live incident board. Plain script, no build step, no external assets.
//
// Loads /api/v1/incidents, then follows /api/v1/feed from the listing's `seq`, applying each
// change (opened, updated, escalated, resolved, reopened, silenced, unsilenced, acknowledged) to
// the cards; an incident's view acknowledges it, the silences view makes and expires silences. The
// feed is read with
// fetch() and a reader over the response body, not EventSource, so that the bearer token can be
// sent. Every piece of incident or log text goes into the DOM as textContent, never as HTML.
"use strict";

const SEVERITIES = ["critical", "error", "warning", "info"];
const TOKEN_KEY = "logwarden-token";
const NAME_KEY = "logwarden-name"; // who acknowledges and silences, remembered on this device
const RESOLVED_SHOWN = 10;

const state = {
  incidents: new Map(), // id → the latest incident JSON
  seq: 0, // the last change applied
  feed: null, // the AbortController of the open feed request
  retry: 1000,
};

class Unauthorized extends Error {}
class NotFound extends Error {}

// --- DOM ---------------------------------------------------------------------------------------

// el("div", {class: "x"}, "text", child): children are text (as text nodes) or nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function setStatus(text, kind) {
  const s = $("status");
  s.textContent = text;
  s.className = "status" + (kind ? " " + kind : "");
}

// --- time --------------------------------------------------------------------------------------

function age(ts) {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return "";
  let s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m";
  const h = Math.floor(m / 60);
  if (h < 48) return h + "h " + (m % 60) + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

function shortTime(ts) {
  const t = new Date(ts);
  return Number.isNaN(t.getTime()) ? String(ts) : t.toLocaleString();
}

// --- API ---------------------------------------------------------------------------------------

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path, signal) {
  const res = await fetch(path, { headers: headers(), signal, cache: "no-store" });
  if (res.status === 401) throw new Unauthorized();
  if (res.status === 404) throw new NotFound(await errorText(res));
  if (!res.ok) throw new Error(res.status + " " + (await errorText(res)));
  return res;
}

// A JSON request (POST, DELETE) with the token; the answer's JSON, or an Error saying why not.
async function send(method, path, body) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (body !== undefined) {
    init.headers = Object.assign({ "Content-Type": "application/json" }, init.headers);
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) throw new Unauthorized();
  if (!res.ok) throw new Error(await errorText(res));
  return res.json();
}

function operatorName() {
  return localStorage.getItem(NAME_KEY) || "";
}

async function errorText(res) {
  try {
    const body = await res.json();
    return body && body.error ? String(body.error) : res.statusText;
  } catch (_) {
    return res.statusText;
  }
}

function askToken(message) {
  const form = $("token-form");
  form.hidden = false;
  const err = $("token-error");
  err.hidden = !message;
  err.textContent = message || "";
  setStatus("token needed", "down");
  $("token-input").focus();
}

// --- the board ---------------------------------------------------------------------------------

function card(inc) {
  const open = inc.state === "open";
  const meta = el("div", { class: "meta" },
    el("span", { class: "mono" }, inc.id),
    el("span", {}, inc.class),
    el("span", {}, (inc.services || []).join(", ")),
    el("span", { class: "age", "data-since": open ? inc.opened_at || inc.first_seen : "" },
      open ? "open " + age(inc.opened_at || inc.first_seen) : "resolved " + shortTime(inc.resolved_at)),
    el("span", {}, inc.count + (inc.count === 1 ? " match" : " matches")),
  );
  const badges = el("div", { class: "meta" },
    el("span", { class: "badge" }, inc.severity),
    inc.escalation_level > 0 ? el("span", { class: "badge level" }, "escalation L" + inc.escalation_level) : null,
    inc.consequence ? el("span", { class: "badge" }, "consequence of " + (inc.caused_by || []).join(", ")) : null,
    marks(inc),
  );
  return el("a", {
    class: "card sev-" + inc.severity + (open ? "" : " resolved"),
    href: "#/incidents/" + encodeURIComponent(inc.id),
    "data-id": inc.id,
    "data-state": inc.state,
  }, el("div", { class: "title" }, inc.title), badges, meta);
}

// "Silenced by sil-… until …: alice, monthly VACUUM FULL".
function silenceText(s) {
  return "Silenced by " + s.id + " until " + shortTime(s.ends) + ": " + s.by + ", " + s.reason;
}

// The silenced and acknowledged badges of an incident.
function marks(inc) {
  return [
    inc.silenced_by ? el("span", { class: "badge silenced", title: silenceText(inc.silenced_by) }, "silenced") : null,
    inc.acknowledged ? el("span", { class: "badge acked", title: inc.acknowledged.note || "" },
      "acked by " + inc.acknowledged.by) : null,
  ];
}

function renderBoard(flashId) {
  const all = [...state.incidents.values()];
  const open = all.filter((i) => i.state === "open");
  const board = $("board");
  board.replaceChildren();
  for (const sev of SEVERITIES) {
    const group = open
      .filter((i) => i.severity === sev)
      .sort((a, b) => (b.escalation_level - a.escalation_level) ||
        String(a.opened_at || a.first_seen).localeCompare(String(b.opened_at || b.first_seen)));
    if (group.length === 0) continue;
    board.append(el("section", { class: "group", "data-severity": sev },
      el("h2", {}, sev + " ", el("span", { class: "n" }, "(" + group.length + ")")),
      el("div", { class: "cards" }, group.map(card))));
  }
  $("board-empty").hidden = open.length > 0;
  const resolved = all
    .filter((i) => i.state !== "open")
    .sort((a, b) => String(b.resolved_at || "").localeCompare(String(a.resolved_at || "")))
    .slice(0, RESOLVED_SHOWN);
  $("resolved").replaceChildren(el("div", { class: "cards" }, resolved.map(card)));
  $("resolved-head").hidden = resolved.length === 0;
  if (flashId) {
    for (const c of document.querySelectorAll(".card")) {
      if (c.dataset.id === flashId) c.classList.add("flash");
    }
  }
}

function tickAges() {
  for (const node of document.querySelectorAll(".card .age")) {
    const since = node.dataset.since;
    if (since) node.textContent = "open " + age(since);
  }
}

// --- the feed: server-sent events over fetch --------------------------------------------------

// Parse one SSE block ("id: …\nevent: …\ndata: …") into {id, event, data}; null for a comment.
function parseBlock(block) {
  let id = null;
  let event = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { id, event, data: data.join("\n") } : null;
}

function applyChange(message) {
  let change;
  try {
    change = JSON.parse(message.data);
  } catch (_) {
    console.warn("logwarden: a feed event that is not JSON", message);
    return;
  }
  const inc = change && change.incident;
  if (!inc || !inc.id) return;
  if (typeof change.seq === "number" && change.seq <= state.seq) return; // already applied
  state.incidents.set(inc.id, inc);
  if (typeof change.seq === "number") state.seq = change.seq;
  else if (message.id && /^\d+$/.test(message.id)) state.seq = Number(message.id);
  renderBoard(inc.id);
  if (currentIncidentId() === inc.id) renderIncident(inc);
}

async function follow() {
  if (state.feed) state.feed.abort();
  const controller = new AbortController();
  state.feed = controller;
  try {
    const res = await api("/api/v1/feed?last_event_id=" + state.seq, controller.signal);
    setStatus("live", "live");
    state.retry = 1000;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(buffer.slice(end).match(/^\r?\n\r?\n/)[0].length + end);
        const message = parseBlock(block);
        if (message) applyChange(message);
      }
    }
    throw new Error("the feed ended");
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err instanceof Unauthorized) return askToken();
    setStatus("disconnected, retrying…", "down");
    const wait = state.retry;
    state.retry = Math.min(state.retry * 2, 30000);
    setTimeout(follow, wait);
  }
}

async function start() {
  setStatus("loading…");
  try {
    const res = await api("/api/v1/incidents?open=true");
    const body = await res.json();
    state.incidents.clear();
    for (const inc of body.incidents || []) state.incidents.set(inc.id, inc);
    state.seq = Number(body.seq) || 0;
    $("token-form").hidden = true;
    renderBoard();
    route();
    follow();
  } catch (err) {
    if (err instanceof Unauthorized) {
      const had = sessionStorage.getItem(TOKEN_KEY);
      return askToken(had ? "The server refused that token." : "");
    }
    setStatus("cannot load incidents: " + err.message + " (retrying)", "down");
    setTimeout(start, 3000);
  }
}

// --- one incident ------------------------------------------------------------------------------

function currentIncidentId() {
  const m = location.hash.match(/^#\/incidents\/([^/?]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

function copyButton(text) {
  return el("button", {
    type: "button",
    onclick: (e) => {
      const done = () => { e.target.textContent = "copied"; setTimeout(() => { e.target.textContent = "copy"; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => {});
    },
  }, "copy");
}

function command(text) {
  return el("div", { class: "cmd" }, el("pre", {}, el("code", {}, text)), copyButton(text));
}

function renderIncident(inc) {
  const id = inc.id;
  const checked = JSON.parse(sessionStorage.getItem("logwarden-steps-" + id) || "{}");
  const steps = (inc.runbook && inc.runbook.steps) || [];
  const list = el("ol", { class: "steps" }, steps.map((step, n) => {
    const li = el("li", { class: checked[n] ? "done" : "" });
    const box = el("input", { type: "checkbox", checked: !!checked[n] });
    box.addEventListener("change", () => {
      checked[n] = box.checked;
      li.classList.toggle("done", box.checked);
      sessionStorage.setItem("logwarden-steps-" + id, JSON.stringify(checked));
    });
    li.append(el("label", {}, box, el("span", { class: "text" }, step.text)),
      ...(step.commands || []).map(command));
    return li;
  }));
  const evidence = el("ol", { class: "evidence" }, (inc.evidence || []).map((ev) =>
    el("li", {}, el("span", { class: "when mono" }, shortTime(ev.ts)),
      el("span", { class: "badge" }, ev.service), " ", el("span", { class: "mono" }, ev.text))));
  const since = inc.first_seen;
  const until = inc.state === "open" ? "" : inc.last_seen;
  const searchLink = "#/search?q=" + encodeURIComponent("incident:" + id) +
    "&since=" + encodeURIComponent(since || "") + (until ? "&until=" + encodeURIComponent(until) : "");
  $("incident").replaceChildren(el("div", { class: "detail", "data-id": id },
    el("h1", {}, inc.title),
    el("div", { class: "meta" },
      el("span", { class: "badge" }, inc.severity), " ",
      el("span", { class: "badge" }, inc.state), " ",
      inc.escalation_level > 0 ? el("span", { class: "badge level" }, "escalation L" + inc.escalation_level) : null, " ",
      el("span", { class: "mono" }, id), " · ", inc.class, " · ", (inc.services || []).join(", "), " · ",
      inc.count + " matches · first " + shortTime(inc.first_seen) + " · last " + shortTime(inc.last_seen),
      inc.caused_by && inc.caused_by.length ? el("span", {}, " · caused by ",
        inc.caused_by.map((c) => el("a", { href: "#/incidents/" + encodeURIComponent(c) }, c + " "))) : null),
    ackPart(inc),
    el("h2", {}, "Timeline"),
    command("loggrep --incident " + id),
    el("p", {}, el("a", { href: searchLink }, "search this incident's events")),
    el("h2", {}, "Runbook: " + ((inc.runbook && inc.runbook.title) || "none")),
    steps.length ? list : el("p", { class: "empty" }, "No runbook steps."),
    el("h2", {}, "Evidence"),
    evidence));
}

// Who acknowledged it, or (open, not yet) a form to acknowledge it: it stays open but stops
// escalating and paging.
function ackPart(inc) {
  const says = [];
  if (inc.silenced_by) says.push(el("p", { class: "info silence-said" }, silenceText(inc.silenced_by) + ": recorded, nobody is paged."));
  if (inc.acknowledged) {
    const a = inc.acknowledged;
    says.push(el("p", { class: "info ack-said" }, "Acknowledged by " + a.by + " at " + shortTime(a.at) +
      (a.note ? ": " + a.note : "")));
  }
  if (inc.state !== "open" || inc.acknowledged) return says;
  const by = el("input", { id: "ack-by", placeholder: "your name", value: operatorName(), "aria-label": "your name" });
  const note = el("input", { id: "ack-note", placeholder: "what you are doing (optional)", "aria-label": "note" });
  const said = el("span", { class: "error", id: "ack-error" });
  const form = el("form", { class: "ack", id: "ack-form" }, by, note, el("button", { type: "submit" }, "Acknowledge"), said);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    said.textContent = "";
    if (by.value.trim()) localStorage.setItem(NAME_KEY, by.value.trim());
    try {
      const change = await send("POST", "/api/v1/incidents/" + encodeURIComponent(inc.id) + "/ack",
        { by: by.value.trim() || undefined, note: note.value });
      applyChange({ data: JSON.stringify(change) });
    } catch (err) {
      if (err instanceof Unauthorized) return askToken();
      said.textContent = "cannot acknowledge: " + err.message;
    }
  });
  return [...says, form];
}

async function showIncident(id) {
  const known = state.incidents.get(id);
  if (known) renderIncident(known);
  else $("incident").replaceChildren(el("p", { class: "info" }, "loading " + id + "…"));
  try {
    const res = await api("/api/v1/incidents/" + encodeURIComponent(id));
    const inc = await res.json();
    if (currentIncidentId() === id) renderIncident(inc);
  } catch (err) {
    if (err instanceof Unauthorized) return askToken();
    if (!known) $("incident").replaceChildren(el("p", { class: "error" }, "cannot load " + id + ": " + err.message));
  }
}

// --- search ------------------------------------------------------------------------------------

async function runSearch(params) {
  const q = params.get("q") || "";
  $("search-q").value = q;
  const info = $("search-info");
  const hits = $("search-hits");
  hits.replaceChildren();
  info.className = "info";
  info.textContent = "searching…";
  const query = new URLSearchParams({ q, limit: params.get("limit") || "200" });
  for (const key of ["since", "until"]) if (params.get(key)) query.set(key, params.get(key));
  try {
    const res = await api("/api/v1/search?" + query.toString());
    const body = await res.json();
    const list = body.hits || [];
    info.textContent = list.length + " shown" + (typeof body.matched === "number" ? " of " + body.matched + " matched" : "");
    hits.replaceChildren(...list.map((h) => el("li", {},
      el("span", { class: "when mono" }, shortTime(h.ts)),
      el("span", { class: "badge" }, h.service), " ",
      el("span", { class: "lvl-" + h.level }, h.level), " ",
      el("span", { class: "mono" }, h.message || h.raw))));
  } catch (err) {
    if (err instanceof Unauthorized) return askToken();
    info.className = "error";
    info.textContent = err instanceof NotFound
      ? "Search unavailable: this server has no /api/v1/search."
      : "search failed: " + err.message;
  }
}

// --- silences ----------------------------------------------------------------------------------

async function showSilences() {
  const list = $("silences");
  const info = $("silences-info");
  try {
    const body = await (await api("/api/v1/silences")).json();
    const silences = body.silences || [];
    info.className = "info";
    info.textContent = silences.length ? "" : "No silence holds or is coming.";
    list.replaceChildren(...silences.map((s) => el("li", { "data-id": s.id },
      el("span", { class: "badge" }, s.state), " ",
      el("span", { class: "mono" }, s.matchers.map(matcherText).join(" ")), " ",
      el("span", {}, "until " + shortTime(s.ends) + " · by " + s.by + " · " + s.reason), " ",
      el("button", { type: "button", class: "expire", onclick: () => expire(s.id) }, "Expire"))));
  } catch (err) {
    if (err instanceof Unauthorized) return askToken();
    info.className = "error";
    info.textContent = "cannot load silences: " + err.message;
  }
}

function matcherText(m) {
  return m.field + (m.negated ? "!=" : "=") + m.values.join(",");
}

async function expire(id) {
  try {
    await send("DELETE", "/api/v1/silences/" + encodeURIComponent(id));
  } catch (err) {
    if (err instanceof Unauthorized) return askToken();
    $("silences-info").className = "error";
    $("silences-info").textContent = "cannot expire " + id + ": " + err.message;
    return;
  }
  showSilences();
}

async function addSilence(e) {
  e.preventDefault();
  const said = $("silence-error");
  said.textContent = "";
  const by = $("silence-by").value.trim();
  if (by) localStorage.setItem(NAME_KEY, by);
  try {
    await send("POST", "/api/v1/silences", {
      match: $("silence-match").value, for: $("silence-for").value,
      reason: $("silence-reason").value, by: by || undefined,
    });
  } catch (err) {
    if (err instanceof Unauthorized) return askToken();
    said.textContent = err.message;
    return;
  }
  $("silence-match").value = "";
  $("silence-reason").value = "";
  showSilences();
}

// --- routing -----------------------------------------------------------------------------------

function route() {
  const hash = location.hash || "#/";
  const id = currentIncidentId();
  const search = hash.startsWith("#/search");
  const silences = hash.startsWith("#/silences");
  $("board-view").hidden = !!id || search || silences;
  $("incident-view").hidden = !id;
  $("search-view").hidden = !search;
  $("silences-view").hidden = !silences;
  if (id) showIncident(id);
  else if (silences) {
    if (!$("silence-by").value) $("silence-by").value = operatorName();
    showSilences();
  }
  else if (search) runSearch(new URLSearchParams(hash.slice(hash.indexOf("?") + 1 || hash.length)));
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    start();
  });
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const params = new URLSearchParams({ q: $("search-q").value });
    const since = $("search-since").value;
    if (since) params.set("since", since);
    location.hash = "#/search?" + params.toString();
  });
  $("silence-form").addEventListener("submit", addSilence);
  window.addEventListener("hashchange", route);
  setInterval(tickAges, 10000);
  // /incidents/ID is served the same page: turn it into the hash route.
  const path = location.pathname.match(/^\/incidents\/([^/]+)$/);
  if (path) history.replaceState(null, "", "/#/incidents/" + path[1]);
  start();
});
