"use strict";
// app: tern's test mode page. The captured mail from the JSON API
// (docs/API.md), kept live by server-sent events; a message's HTML shown
// only in a sandboxed iframe. Message data is hostile: it goes into the
// page through textContent and createElement, never as markup.

const API = "/api/v1";
const PAGE = 50;
// Put first in every HTML body shown: no script, no remote anything
// (the page's own policy, which a srcdoc iframe inherits, says as much).
const FRAME_CSP = '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' +
  ' img-src data:; style-src \'unsafe-inline\'; font-src data:">';

const state = {
  inbox: "",          // "" = every inbox
  query: "",
  start: 0,
  total: 0,           // messages matching the list (messages_count)
  messages: [],
  selected: null,     // ID with the keyboard cursor
  open: null,         // the message object shown
  tab: "text",
  listSeq: 0,         // drops answers of lists asked before the last
  openSeq: 0,
  live: false,
  inboxes: 0,         // how many inboxes hold mail
};

const $ = (id) => document.getElementById(id);

// ---- small helpers ----

// An element: props are properties (text = textContent), then children
// (strings become text nodes). Never innerHTML.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k === "data") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

const enc = encodeURIComponent;

function str(v) {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.map(str).join(", ");
  return JSON.stringify(v);
}

// A request; every change carries JSON, {} at least (the server refuses
// form content types as cross-site requests). Answers {ok, status, data}:
// JSON parsed, else text.
async function api(method, path, body) {
  const opt = { method, headers: { Accept: "application/json" }, cache: "no-store" };
  if (method !== "GET" && body === undefined) body = {};
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opt);
  } catch (e) {
    return { ok: false, status: 0, data: { Error: "cannot reach ternd: " + e.message } };
  }
  const type = r.headers.get("Content-Type") || "";
  let data = await r.text();
  if (type.includes("json")) {
    try { data = JSON.parse(data); } catch (e) { /* keep the text */ }
  }
  return { ok: r.ok, status: r.status, data };
}

function errorText(res) {
  if (res.data && typeof res.data === "object" && res.data.Error) return res.data.Error;
  if (typeof res.data === "string" && res.data) return res.data.slice(0, 300);
  return "HTTP " + res.status;
}

function address(a) {
  if (!a) return "";
  if (typeof a === "string") return a;
  const addr = a.Address || "";
  return a.Name ? a.Name + " <" + addr + ">" : addr;
}

function addresses(list) {
  return Array.isArray(list) ? list.map(address).join(", ") : address(list);
}

function shortDate(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return str(iso);
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  const time = pad(d.getHours()) + ":" + pad(d.getMinutes());
  if (d.toDateString() === now.toDateString()) return time + ":" + pad(d.getSeconds());
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + time;
}

function size(n) {
  n = Number(n) || 0;
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " kB";
  return (n / 1024 / 1024).toFixed(1) + " MB";
}

function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

function notice(text, bad) {
  const n = $("msg-notice");
  n.textContent = text;
  n.className = bad ? "bad" : "good";
  n.hidden = !text;
}

// ---- inboxes ----

async function loadInboxes() {
  const res = await api("GET", API + "/inboxes");
  if (!res.ok || !Array.isArray(res.data)) return;
  const ul = clear($("inboxes"));
  let total = 0, unread = 0;
  for (const b of res.data) {
    total += Number(b.Total) || 0;
    unread += Number(b.Unread) || 0;
  }
  if (state.inboxes !== res.data.length) {   // the list's inbox badges come or go
    state.inboxes = res.data.length;
    renderList("");
  }
  ul.appendChild(inboxItem("", "All", total, unread));
  for (const b of res.data) ul.appendChild(inboxItem(str(b.Name), str(b.Name), b.Total, b.Unread));
}

function inboxItem(name, label, total, unread) {
  const b = el("button", { type: "button", class: "inbox" + (name === state.inbox ? " current" : ""),
                           title: label, onclick: () => chooseInbox(name) },
               el("span", { class: "name", text: label }),
               el("span", { class: "count", title: (unread || 0) + " unread of " + (total || 0),
                            text: unread ? unread + " / " + total : String(total || 0) }));
  if (name === state.inbox) b.setAttribute("aria-current", "true");
  return el("li", null, b);
}

function chooseInbox(name) {
  state.inbox = name;
  state.start = 0;
  showTool(null);
  loadInboxes();
  loadList();
}

const refreshInboxes = debounce(loadInboxes, 300);

// ---- the list ----

async function loadList() {
  const seq = ++state.listSeq;
  const p = new URLSearchParams({ start: state.start, limit: PAGE });
  if (state.inbox) p.set("inbox", state.inbox);
  let path = API + "/messages?";
  if (state.query) {
    p.set("query", state.query);
    path = API + "/search?";
  }
  const res = await api("GET", path + p);
  if (seq !== state.listSeq) return;
  $("search").classList.toggle("bad", !res.ok && !!state.query);
  if (!res.ok || !res.data || !Array.isArray(res.data.messages)) {
    state.messages = [];
    state.total = 0;
    renderList(res.ok ? "" : errorText(res));
    return;
  }
  state.messages = res.data.messages;
  state.total = Number(res.data.messages_count) || 0;
  renderList("");
}

const reloadList = debounce(loadList, 250);

function renderList(error) {
  const ul = $("messages");
  const focused = ul.contains(document.activeElement);
  clear(ul);
  for (const m of state.messages) ul.appendChild(listItem(m));
  const empty = $("list-empty");
  empty.hidden = state.messages.length > 0;
  empty.textContent = error || (state.query ? "Nothing matches." : "No messages yet.");
  empty.classList.toggle("bad", !!error);
  $("list-title").textContent = (state.query ? "Search" : state.inbox ? "Inbox " + state.inbox : "All messages");
  $("list-count").textContent = state.total + (state.total === 1 ? " message" : " messages");
  const first = state.messages.length ? state.start + 1 : 0;
  $("page-info").textContent = first + "–" + (state.start + state.messages.length) + " of " + state.total;
  $("prev").disabled = state.start === 0;
  $("next").disabled = state.start + state.messages.length >= state.total;
  if (!state.messages.some((m) => m.ID === state.selected)) state.selected = null;
  markSelected();
  if (focused) {   // drawn anew under the keyboard: the cursor stays
    const li = [...ul.children].find((x) => x.dataset.id === state.selected);
    (li || ul).focus();
  }
}

function listItem(m) {
  const from = m.From ? (m.From.Name || m.From.Address) : str(m.Envelope && m.Envelope.From);
  const li = el("li", { role: "option", class: "msg" + (m.Read ? "" : " unread"), tabindex: "-1",
                        data: { id: str(m.ID) }, onclick: () => { select(m.ID); openMessage(m.ID); } },
    el("div", { class: "row1" },
      el("span", { class: "from", text: from || "(no sender)" }),
      el("time", { class: "date", text: shortDate(m.Created), datetime: str(m.Created) })),
    el("div", { class: "subject", text: str(m.Subject) || "(no subject)" }),
    el("div", { class: "row3" },
      el("span", { class: "snippet", text: str(m.Snippet) }),
      m.Attachments ? el("span", { class: "badge", text: m.Attachments + (m.Attachments === 1 ? " attachment" : " attachments") }) : null,
      !state.inbox && state.inboxes > 1 && m.Inbox ? el("span", { class: "badge inbox-badge", text: str(m.Inbox) }) : null));
  return li;
}

function markSelected() {
  for (const li of $("messages").children) {
    const on = li.dataset.id === state.selected;
    li.classList.toggle("selected", on);
    li.classList.toggle("opened", !!state.open && li.dataset.id === state.open.ID);
    li.setAttribute("aria-selected", on ? "true" : "false");
  }
}

function select(id) {
  state.selected = id;
  markSelected();
  const li = [...$("messages").children].find((x) => x.dataset.id === id);
  if (li) {
    li.scrollIntoView({ block: "nearest" });
    if (document.activeElement && document.activeElement.closest &&
        document.activeElement.closest("#messages")) li.focus();
  }
}

function moveSelection(delta) {
  const ids = state.messages.map((m) => m.ID);
  if (!ids.length) return;
  let i = ids.indexOf(state.selected);
  i = i < 0 ? (delta > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, i + delta));
  select(ids[i]);
  const li = [...$("messages").children].find((x) => x.dataset.id === ids[i]);
  if (li) li.focus();
}

function page(delta) {
  const start = state.start + delta * PAGE;
  if (start < 0 || (delta > 0 && start >= state.total)) return;
  state.start = start;
  loadList();
}

// ---- live: server-sent events ----

function connectEvents() {
  const es = new EventSource(API + "/events");
  es.addEventListener("hello", () => {
    setLive(true);
    loadList();        // what came while we were not listening
    loadInboxes();
  });
  es.addEventListener("message", (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (err) { return; }
    arrived(m);
  });
  es.onerror = () => setLive(false);   // EventSource connects again by itself
}

function setLive(on) {
  state.live = on;
  const l = $("live");
  l.textContent = on ? "live" : "offline";
  l.className = "live " + (on ? "on" : "off");
}

function arrived(m) {
  refreshInboxes();
  if (!m || !m.ID || (state.inbox && m.Inbox !== state.inbox)) return;
  if (state.query || state.start > 0) {
    reloadList();
    return;
  }
  if (state.messages.some((x) => x.ID === m.ID)) return;
  state.messages.unshift(m);
  if (state.messages.length > PAGE) state.messages.length = PAGE;
  state.total++;
  renderList("");
}

// ---- one message ----

function msgPath(id, rest) {
  return API + "/message/" + enc(id) + (rest || "");
}

async function openMessage(id) {
  const seq = ++state.openSeq;
  const res = await api("GET", msgPath(id));
  if (seq !== state.openSeq) return;
  showTool(null);
  if (!res.ok || !res.data || typeof res.data !== "object") {
    showMessage(null);
    $("placeholder").firstElementChild.textContent = "Cannot open the message: " + errorText(res);
    return;
  }
  const m = res.data;
  state.open = m;
  const item = state.messages.find((x) => x.ID === id);
  if (item && !item.Read) {
    item.Read = true;
    const li = [...$("messages").children].find((x) => x.dataset.id === id);
    if (li) li.classList.remove("unread");
    refreshInboxes();
  }
  renderMessage(m);
  markSelected();
  probeExtras(m, seq);
}

function showMessage(m) {
  $("message").hidden = !m;
  $("placeholder").hidden = !!m;
  if (!m) {
    state.open = null;
    $("placeholder").firstElementChild.textContent = "Select a message.";
  }
}

function renderMessage(m) {
  showMessage(m);
  notice("");
  $("msg-subject").textContent = str(m.Subject) || "(no subject)";
  $("msg-download").href = msgPath(m.ID, "/raw");
  $("msg-download").setAttribute("download", str(m.ID) + ".eml");
  renderFields($("msg-envelope"), [
    ["From", address(m.From)],
    ["To", addresses(m.To)],
    ["Cc", addresses(m.Cc)],
    ["Bcc", addresses(m.Bcc)],
    ["Reply-To", addresses(m.ReplyTo)],
    ["Date", m.Date ? new Date(m.Date).toString() === "Invalid Date" ? str(m.Date) : new Date(m.Date).toLocaleString() : ""],
    ["Envelope", m.Envelope ? "MAIL FROM:<" + str(m.Envelope.From) + ">  RCPT TO: " + str(m.Envelope.To) : ""],
    ["Inbox", str(m.Inbox)],
    ["Size", m.Size ? size(m.Size) : ""],
    ["Message-ID", str(m.MessageID)],
    ["Queue ID", str(m.QueueID)],
  ]);
  renderAttachments(m);
  $("msg-text").textContent = str(m.Text);
  clear($("msg-html"));
  clear($("msg-raw"));
  clear($("msg-headers").tBodies[0]);
  clear($("msg-parts"));
  clear($("msg-transcript"));
  clear($("msg-lint"));
  for (const t of ["transcript", "lint"]) tabButton(t).hidden = true;
  tabButton("html").hidden = !m.HTML;
  tabButton("text").hidden = !m.Text && !!m.HTML;
  tabButton("lint").textContent = "Lint";
  const loaded = {};
  state.loaded = loaded;
  let tab = state.tab;
  if ((tab === "text" && !m.Text) || (tab === "html" && !m.HTML) || tabButton(tab).hidden)
    tab = m.Text ? "text" : m.HTML ? "html" : "raw";
  showTab(tab, false);
}

function renderFields(table, rows) {
  const body = clear(table.tBodies[0]);
  for (const [k, v] of rows) {
    if (!v) continue;
    body.appendChild(el("tr", null, el("th", { scope: "row", text: k }), el("td", { text: v })));
  }
}

function renderAttachments(m) {
  const ul = clear($("msg-attachments"));
  const all = [].concat(m.Attachments || [], m.Inline || []);
  for (const a of all) {
    const name = str(a.FileName) || "part " + str(a.PartID);
    ul.appendChild(el("li", null,
      el("a", { href: msgPath(m.ID, "/part/" + enc(str(a.PartID))), download: name, text: name,
                title: "Download " + name }),
      el("span", { class: "muted", text: " " + str(a.ContentType) + ", " + size(a.Size) })));
  }
  ul.hidden = all.length === 0;
  if (m.PartsTruncated) ul.appendChild(el("li", { class: "muted", text: "(more parts than are listed)" }));
}

// ---- the message's tabs ----

function tabButton(name) {
  return document.querySelector('#tabs [data-tab="' + name + '"]');
}

function showTab(name, remember) {
  if (remember) state.tab = name;
  for (const b of $("tabs").children) {
    const on = b.dataset.tab === name;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
  }
  for (const p of document.querySelectorAll("#panes .pane")) p.hidden = p.dataset.pane !== name;
  if (state.open) fillTab(name, state.open);
}

async function fillTab(name, m) {
  const loaded = state.loaded;
  if (loaded[name]) return;
  loaded[name] = true;
  if (name === "html") return fillHtml(m);
  if (name === "raw") return fillRaw(m, loaded);
  if (name === "headers") return fillHeaders(m, loaded);
  if (name === "parts") return fillParts(m, loaded);
}

// The HTML body, in an iframe with every sandbox flag (no scripts, an
// opaque origin, no forms, no popups, no top navigation), behind a
// policy that loads nothing remote.
function fillHtml(m) {
  const box = clear($("msg-html"));
  if (!m.HTML) {
    box.appendChild(el("p", { class: "empty", text: "This message has no HTML part." }));
    return;
  }
  const f = document.createElement("iframe");
  f.setAttribute("sandbox", "");
  f.setAttribute("referrerpolicy", "no-referrer");
  f.setAttribute("title", "HTML body (sandboxed: no scripts, no remote content)");
  f.className = "html-body";
  f.addEventListener("load", () => { f.dataset.loaded = "1"; });
  f.srcdoc = FRAME_CSP + str(m.HTML);
  box.appendChild(f);
}

async function fillRaw(m, loaded) {
  const res = await api("GET", msgPath(m.ID, "/raw"));
  if (state.loaded !== loaded) return;
  $("msg-raw").textContent = res.ok ? str(res.data) : "Cannot read the source: " + errorText(res);
}

async function fillHeaders(m, loaded) {
  const res = await api("GET", msgPath(m.ID, "/headers"));
  if (state.loaded !== loaded) return;
  const rows = [];
  if (res.ok && res.data && typeof res.data === "object") {
    for (const [k, vs] of Object.entries(res.data))
      for (const v of Array.isArray(vs) ? vs : [vs]) rows.push([k, str(v)]);
  } else {
    rows.push(["Error", errorText(res)]);
  }
  renderFields($("msg-headers"), rows);
}

async function fillParts(m, loaded) {
  const res = await api("GET", msgPath(m.ID, "/parts"));
  if (state.loaded !== loaded) return;
  const ul = clear($("msg-parts"));
  const parts = res.ok && res.data && Array.isArray(res.data.Parts) ? res.data.Parts : null;
  if (!parts) {
    ul.appendChild(el("li", { class: "bad", text: errorText(res) }));
    return;
  }
  for (const p of parts) {
    const leaf = !/^multipart\//i.test(str(p.ContentType));
    const label = str(p.PartID) + "  " + str(p.ContentType);
    ul.appendChild(el("li", { style: "padding-left:" + (Number(p.Depth) || 0) * 1.5 + "em" },
      leaf && p.PartID !== "0"
        ? el("a", { href: msgPath(m.ID, "/part/" + enc(str(p.PartID))), download: str(p.FileName) || "part-" + str(p.PartID), text: label })
        : el("span", { text: label }),
      p.FileName ? el("span", { class: "fname", text: " " + str(p.FileName) }) : null,
      el("span", { class: "muted", text: (leaf ? "  " + size(p.Size) : "") + (p.Attachment ? "  attachment" : "") })));
  }
  if (res.data.Truncated) ul.appendChild(el("li", { class: "muted", text: "(the tree is cut: too many parts)" }));
}

// ---- transcript and lint: shown when ternd has them ----

function probeExtras(m, seq) {
  const loaded = state.loaded;
  api("GET", msgPath(m.ID, "/transcript")).then((res) => {
    if (seq !== state.openSeq || state.loaded !== loaded || !res.ok) return;
    renderTranscript(res.data);
    tabButton("transcript").hidden = false;
    if (state.tab === "transcript") showTab("transcript", false);   // the one last chosen
  });
  api("GET", msgPath(m.ID, "/lint")).then((res) => {
    if (seq !== state.openSeq || state.loaded !== loaded || !res.ok) return;
    const n = renderLint(res.data);
    const b = tabButton("lint");
    b.hidden = false;
    b.textContent = n ? "Lint (" + n + ")" : "Lint";
    b.classList.toggle("warn", n > 0);
    if (state.tab === "lint") showTab("lint", false);
  });
}

// The lines of a transcript, whatever its exact shape: an array, or an
// object holding one (lines; a message's record holds its session), or text.
function transcriptLines(data) {
  if (typeof data === "string") return data.split(/\r?\n/).filter((x) => x).map((text) => ({ text }));
  if (Array.isArray(data)) return data;
  if (data && typeof data === "object") {
    for (const k of ["lines", "Lines", "transcript", "Transcript"]) {
      const v = data[k];
      if (Array.isArray(v)) return v;
      if (typeof v === "string") return transcriptLines(v);
    }
    for (const k of ["session", "Session"])
      if (data[k] && typeof data[k] === "object") return transcriptLines(data[k]);
  }
  return [];
}

// A session's lines: time (s since it began), who (C: client, S: us,
// #: a note), the text; a rule where a new input batch begins. The lines
// from first to last (a message's transaction) are marked.
function transcriptList(ol, data) {
  clear(ol);
  const lines = transcriptLines(data);
  const first = data && typeof data.first === "number" ? data.first : -1;
  const last = data && typeof data.last === "number" ? data.last : -1;
  let batch = null;
  lines.forEach((l, i) => {
    const o = l && typeof l === "object" ? l : { text: str(l) };
    const dir = str(o.dir || o.Dir || "");
    const b = o.batch !== undefined ? o.batch : o.Batch;
    const t = o.t !== undefined ? o.t : o.T;
    const who = dir === "in" ? "C:" : dir === "out" ? "S:" : dir === "note" ? "#" : "";
    let cls = "t-" + (dir || "line");
    if (b !== undefined && batch !== null && b !== batch) cls += " t-batch";
    if (i >= first && i <= last) cls += " t-this";
    ol.appendChild(el("li", { class: cls },
      el("span", { class: "t-time", text: t !== undefined ? (Number(t) / 1000).toFixed(3) : "" }),
      el("span", { class: "t-dir", text: who }),
      el("span", { class: "t-text", text: str(o.text !== undefined ? o.text : o.Text) })));
    if (b !== undefined) batch = b;
  });
  if (!lines.length) ol.appendChild(el("li", { class: "muted", text: "(no lines recorded)" }));
}

function renderTranscript(data) {
  const ol = $("msg-transcript");
  transcriptList(ol, data);
  const s = data && data.session && typeof data.session === "object" ? data.session : null;
  const facts = [];
  if (s) {
    for (const [k, label] of [["client", "client"], ["helo", "HELO"], ["tls", "TLS"], ["user", "user"], ["ended", "ended"]])
      if (s[k]) facts.push(label + " " + str(s[k]));
  }
  if (data && data.status) facts.unshift(str(data.status));
  if (facts.length) ol.insertBefore(el("li", { class: "t-head", text: facts.join(" · ") }), ol.firstChild);
}

function renderLint(data) {
  const ul = clear($("msg-lint"));
  let ws = Array.isArray(data) ? data : data && (data.Warnings || data.warnings || data.lint || data.Lint);
  if (!Array.isArray(ws)) ws = [];
  for (const w of ws) {
    const o = w && typeof w === "object" ? w : { text: str(w) };
    ul.appendChild(el("li", null,
      el("code", { text: str(o.code || o.Code) }),
      el("span", { class: "l-text", text: " " + str(o.text || o.Text) + (o.detail ? " (" + str(o.detail) + ")" : "") }),
      o.rfc || o.RFC ? el("span", { class: "muted", text: "  " + str(o.rfc || o.RFC) }) : null));
  }
  if (!ws.length) ul.appendChild(el("li", { class: "good", text: "No warnings: the client did nothing wrong." }));
  return ws.length;
}

// ---- changes ----

async function deleteOpen() {
  const id = state.open ? state.open.ID : state.selected;
  if (!id) return;
  const res = await api("DELETE", msgPath(id));
  if (!res.ok && res.status !== 404) {
    notice("Delete failed: " + errorText(res), true);
    return;
  }
  const i = state.messages.findIndex((x) => x.ID === id);
  if (i >= 0) {
    state.messages.splice(i, 1);
    state.total = Math.max(0, state.total - 1);
  }
  const next = state.messages[Math.min(Math.max(i, 0), state.messages.length - 1)];
  state.selected = next ? next.ID : null;
  if (state.open && state.open.ID === id) showMessage(null);
  renderList("");
  if (state.selected) select(state.selected);
  refreshInboxes();
}

async function deleteAll() {
  const where = state.query ? "found by this search" : state.inbox ? "in inbox " + state.inbox : "in every inbox";
  if (!state.total || !window.confirm("Delete the " + state.total + " messages " + where + "?")) return;
  const p = new URLSearchParams();
  if (state.inbox) p.set("inbox", state.inbox);
  let res;
  if (state.query) {
    p.set("query", state.query);
    res = await api("DELETE", API + "/search?" + p, {});
  } else {
    res = await api("DELETE", API + "/messages?" + p, {});
  }
  if (!res.ok) {
    window.alert("Delete failed: " + errorText(res));
    return;
  }
  state.messages = [];
  state.total = 0;
  state.start = 0;
  showMessage(null);
  renderList("");
  setTimeout(() => { loadInboxes(); loadList(); }, 1000);   // the deletes are done by then
}

async function release(e) {
  e.preventDefault();
  if (!state.open) return;
  const to = $("release-to").value.split(/[\s,;]+/).filter((x) => x);
  if (!to.length) {
    notice("Give one or more addresses to release the message to.", true);
    $("release-to").focus();
    return;
  }
  const res = await api("POST", msgPath(state.open.ID, "/release"), { To: to });
  if (res.ok)
    notice("Released to " + to.join(", ") + (res.data && res.data.QueueID ? " as " + res.data.QueueID : "") + ".", false);
  else
    notice("Release failed: " + errorText(res), true);
}

// ---- tools: sessions, fault rules, queue, stats (when ternd has them) ----

const TOOLS = { sessions: "SMTP sessions", faults: "Fault rules", queue: "Queue", stats: "Stats" };

async function probeTools() {
  const info = await api("GET", API + "/info");
  if (info.ok && info.data) {
    $("about").textContent = "tern " + str(info.data.Version) + " on " + str(info.data.Hostname) +
      (info.data.Capture ? " · capturing" : "");
  }
  let any = false;
  for (const t of Object.keys(TOOLS)) {
    const res = await api("GET", API + "/" + t + (t === "sessions" ? "?limit=1" : ""));
    const show = res.status !== 404 && res.status !== 405 && res.status !== 0;
    $("tool-" + t).hidden = !show;
    any = any || show;
  }
  $("tools-title").hidden = !any;
}

function showTool(name) {
  state.tool = name;
  $("tool-view").hidden = !name;
  if (name) {
    $("message").hidden = true;
    $("placeholder").hidden = true;
  } else {
    $("message").hidden = !state.open;
    $("placeholder").hidden = !!state.open;
  }
  for (const b of document.querySelectorAll("#tools button"))
    b.classList.toggle("current", b.dataset.tool === name);
}

async function openTool(name) {
  showTool(name);
  $("tool-title").textContent = TOOLS[name];
  const body = clear($("tool-body"));
  const res = await api("GET", API + "/" + name);
  if (state.tool !== name) return;
  if (!res.ok) {
    body.appendChild(el("p", { class: "bad", text: errorText(res) }));
    return;
  }
  const make = { sessions: sessionsTable, faults: faultsForm, queue: queueView, stats: statsTable }[name];
  body.appendChild(make(res.data));
}

function unixDate(v) {
  const n = Number(v);
  return n > 0 ? new Date(n * 1000).toLocaleString() : "";
}

// The newest sessions; one opened shows its whole transcript (refused
// ones too, which never became a message).
function sessionsTable(data) {
  const rows = data && Array.isArray(data.sessions) ? data.sessions : [];
  const table = el("table", { class: "grid" },
    el("thead", null, el("tr", null, ...["#", "start", "client", "HELO", "TLS", "user", "messages", "ended"].map((h) => el("th", { text: h })))),
    el("tbody", null, ...rows.map((r) => el("tr", { class: "clickable", tabindex: "0", title: "Show this session's transcript",
                                                   onclick: () => openSession(r.id), onkeydown: (e) => { if (e.key === "Enter") openSession(r.id); } },
      ...[r.id, str(r.start), r.client, r.helo, r.tls, r.user, r.messages, r.ended].map((v) => el("td", { text: str(v) }))))));
  return el("div", null,
    el("p", { class: "muted", text: (data && data.total !== undefined ? data.total + " sessions recorded; " : "") + "the newest first." }),
    rows.length ? table : el("p", { class: "empty", text: "No sessions recorded yet." }),
    el("ol", { id: "session-transcript", class: "transcript" }));
}

async function openSession(id) {
  const res = await api("GET", API + "/session/" + enc(str(id)));
  const ol = $("session-transcript");
  if (!ol) return;
  if (!res.ok) {
    clear(ol).appendChild(el("li", { class: "bad", text: errorText(res) }));
    return;
  }
  transcriptList(ol, res.data);
  ol.insertBefore(el("li", { class: "t-head", text: "Session " + str(id) + " · " + str(res.data.client) + " · " + str(res.data.ended) }), ol.firstChild);
  ol.scrollIntoView({ block: "start" });
}

function faultsText(data) {
  if (typeof data === "string") return data;
  if (Array.isArray(data)) return data.map(str).join("\n");
  if (data && typeof data === "object") {
    const v = data.Rules !== undefined ? data.Rules : data.rules !== undefined ? data.rules : data.text;
    return Array.isArray(v) ? v.map(str).join("\n") : str(v);
  }
  return "";
}

function faultsForm(data) {
  const ta = el("textarea", { id: "faults-text", rows: "12", spellcheck: "false",
                              "aria-label": "Fault rules, one a line" });
  ta.value = faultsText(data);
  const out = el("p", { role: "status" });
  const save = async (text) => {
    const res = await api("PUT", API + "/faults", { Rules: text });
    out.className = res.ok ? "good" : "bad";
    out.textContent = res.ok ? "Saved: the rules are in force." : "Refused: " + errorText(res);
    if (res.ok && text === "") ta.value = "";
  };
  return el("form", { class: "tool-form", onsubmit: (e) => { e.preventDefault(); save(ta.value); } },
    el("p", { class: "muted", text: "One rule a line, e.g. rcpt *@full.test reply 452 4.2.2 Mailbox full" }),
    ta,
    el("div", { class: "buttons" },
      el("button", { type: "submit", text: "Save rules" }),
      el("button", { type: "button", class: "danger", text: "Clear", onclick: () => save("") })),
    out);
}

// A table of rows whatever their fields: the union of the first rows' keys.
function genericTable(rows) {
  const keys = [];
  for (const r of rows.slice(0, 20))
    for (const k of Object.keys(r && typeof r === "object" ? r : { value: r }))
      if (!keys.includes(k)) keys.push(k);
  const body = rows.map((r) => {
    const o = r && typeof r === "object" ? r : { value: r };
    return el("tr", null, ...keys.map((k) => el("td", { text: str(o[k]) })));
  });
  return el("table", { class: "grid" }, el("thead", null, el("tr", null, ...keys.map((k) => el("th", { text: k })))),
            el("tbody", null, ...body));
}

// An administrator's act on a queue id or a domain (ternd wants a login
// for these: http_login).
async function queueAct(target, verb) {
  const res = verb === "delete" ? await api("DELETE", API + "/queue/" + enc(target))
                                : await api("POST", API + "/queue/" + enc(target) + "/" + verb, {});
  const out = $("queue-status");
  if (out) {
    out.className = res.ok ? "good" : "bad";
    out.textContent = res.ok ? verb + " " + target + ": done." : verb + " " + target + " refused: " + errorText(res);
  }
  if (res.ok) {
    const body = clear($("tool-body"));
    const again = await api("GET", API + "/queue");
    body.appendChild(queueView(again.ok ? again.data : []));
    const o2 = $("queue-status");
    if (o2) { o2.className = "good"; o2.textContent = verb + " " + target + ": done."; }
  }
}

function queueView(data) {
  const rows = Array.isArray(data) ? data : data && Array.isArray(data.messages) ? data.messages : [];
  const domain = el("input", { type: "text", placeholder: "a domain", "aria-label": "Domain", spellcheck: "false" });
  const onDomain = (verb) => () => domain.value.trim() && queueAct(domain.value.trim(), verb);
  const form = el("form", { class: "tool-form buttons", onsubmit: (e) => { e.preventDefault(); onDomain("flush")(); } },
    domain,
    ...["hold", "release", "flush"].map((v) => el("button", { type: "button", text: v + " domain", onclick: onDomain(v) })));
  const table = el("table", { class: "grid" },
    el("thead", null, el("tr", null, ...["queue id", "queue", "arrived", "size", "sender", "recipients", ""].map((h) => el("th", { text: h })))),
    el("tbody", null, ...rows.map((m) => {
      const qid = str(m.queue_id || m.QueueID || m.id);
      const rcpts = Array.isArray(m.recipients) ? m.recipients.map((r) =>
        str(r.address) + (r.held ? " (held)" : "") + (r.delay_reason ? ": " + str(r.delay_reason) : "")).join("\n") : str(m.recipients);
      return el("tr", null,
        ...[qid, m.queue_name, unixDate(m.arrival_time), size(m.message_size), str(m.sender) || "<>"].map((v) => el("td", { text: str(v) })),
        el("td", { class: "pre", text: rcpts }),
        el("td", null, ...["hold", "release", "flush", "delete"].map((v) =>
          el("button", { type: "button", class: v === "delete" ? "small danger" : "small", text: v, onclick: () => queueAct(qid, v) }))));
    })));
  return el("div", null, form, el("p", { id: "queue-status", role: "status" }),
            rows.length ? table : el("p", { class: "empty", text: "The queue is empty." }));
}

function statsTable(data) {
  const rows = [];
  const walk = (prefix, v) => {
    if (v && typeof v === "object" && !Array.isArray(v))
      for (const [k, x] of Object.entries(v)) walk(prefix ? prefix + "." + k : k, x);
    else if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === "object"))
      v.forEach((x, i) => walk(prefix + "[" + (x.domain || i) + "]", x.domain ? Object.fromEntries(Object.entries(x).filter(([k]) => k !== "domain")) : x));
    else rows.push({ name: prefix || "value", value: str(v) });
  };
  walk("", data);
  return genericTable(rows);
}

// ---- keyboard ----

function typing(e) {
  const t = e.target;
  return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (typing(e)) {
    if (e.key === "Escape" && e.target.id === "search") {
      e.target.value = "";
      search("");
      e.target.blur();
      $("messages").focus();
    }
    return;
  }
  const keys = {
    "/": () => $("search").focus(),
    j: () => moveSelection(1), ArrowDown: () => moveSelection(1),
    k: () => moveSelection(-1), ArrowUp: () => moveSelection(-1),
    Enter: () => state.selected && openMessage(state.selected),
    o: () => state.selected && openMessage(state.selected),
    Delete: deleteOpen, "#": deleteOpen,
    r: () => { loadInboxes(); loadList(); },
    n: () => page(1), p: () => page(-1),
    Escape: () => { showTool(null); showMessage(null); markSelected(); },
  };
  if (e.target && e.target.closest && e.target.closest("#tabs") && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
    moveTab(e.key === "ArrowRight" ? 1 : -1);
    e.preventDefault();
    return;
  }
  if (e.target && (e.target.tagName === "BUTTON" || e.target.tagName === "A") &&
      (e.key === "Enter" || e.key === " ")) return;   // their own action
  const f = keys[e.key];
  if (!f) return;
  e.preventDefault();
  f();
}

function moveTab(delta) {
  const tabs = [...$("tabs").children].filter((b) => !b.hidden);
  let i = tabs.findIndex((b) => b.getAttribute("aria-selected") === "true");
  i = (i + delta + tabs.length) % tabs.length;
  showTab(tabs[i].dataset.tab, true);
  tabs[i].focus();
}

function search(q) {
  q = q.trim();
  if (q === state.query) return;
  state.query = q;
  state.start = 0;
  loadList();
}

// ---- start ----

function start() {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("search").value); });
  $("search").addEventListener("input", debounce(() => search($("search").value), 300));
  $("refresh").addEventListener("click", () => { loadInboxes(); loadList(); });
  $("delete-all").addEventListener("click", deleteAll);
  $("prev").addEventListener("click", () => page(-1));
  $("next").addEventListener("click", () => page(1));
  $("msg-delete").addEventListener("click", deleteOpen);
  $("release-form").addEventListener("submit", release);
  for (const b of $("tabs").children) b.addEventListener("click", () => showTab(b.dataset.tab, true));
  for (const b of document.querySelectorAll("#tools button")) b.addEventListener("click", () => openTool(b.dataset.tool));
  document.addEventListener("keydown", onKey);
  showMessage(null);
  loadInboxes();
  loadList();
  connectEvents();
  probeTools();
}

start();
