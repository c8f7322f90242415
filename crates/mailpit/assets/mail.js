// The mailbox at /mail: a list of captured mail, one message open beside it, kept live by
// Mailpit's events on the /api/events WebSocket. Every text from a message is set with
// textContent, never parsed as HTML; a message's own HTML is shown only in a sandboxed
// iframe from /view/{ID}.html.
"use strict";

const PAGE = 50;
const state = { start: 0, query: "", messages: [], total: 0, selected: -1, open: null, remote: false };
const $ = (id) => document.getElementById(id);

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let reason = response.statusText;
    try { reason = (await response.json()).Error || reason; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status} ${reason}`);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function send(method, path, body) {
  return api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function address(a) {
  if (!a) return "";
  return a.Name ? `${a.Name} <${a.Address}>` : a.Address;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

// The list.

async function refresh() {
  const path = state.query
    ? `/api/v1/search?query=${encodeURIComponent(state.query)}&start=${state.start}&limit=${PAGE}`
    : `/api/v1/messages?start=${state.start}&limit=${PAGE}`;
  try {
    const page = await api(path);
    state.messages = page.messages;
    state.total = page.messages_count;
    renderList();
    title(page.unread);
  } catch (error) {
    $("list-status").textContent = `Cannot list the mail: ${error.message}`;
  }
}

function title(unread) {
  document.title = unread > 0 ? `(${unread}) Mailbox — switchboard` : "Mailbox — switchboard";
}

function renderList() {
  const list = $("list");
  list.replaceChildren();
  state.messages.forEach((m, i) => {
    const when = el("time", { className: "when", datetime: m.Created, title: new Date(m.Created).toString() }, ago(m.Created));
    const tags = m.Tags.map((t) => el("span", { className: "tag" }, t));
    const row = el("button", {
      type: "button", className: "row" + (m.Read ? "" : " unread"), role: "option",
      "aria-selected": String(i === state.selected), "data-id": m.ID, tabindex: "-1",
    },
      el("span", { className: "from" }, address(m.From) || "(no sender)"), when,
      el("span", { className: "subject" }, m.Subject || "(no subject)", ...tags),
      el("span", { className: "size" },
        (m.Attachments ? `${m.Attachments} file${m.Attachments > 1 ? "s" : ""} · ` : "") + size(m.Size)),
      el("span", { className: "snippet" }, `To ${m.To.map(address).join(", ") || "(nobody)"} — ${m.Snippet}`));
    if (m.Attachments) row.setAttribute("aria-description", `${m.Attachments} attachment(s)`);
    row.addEventListener("click", () => { select(i); openMessage(m.ID); });
    list.append(el("li", {}, row));
  });
  const first = state.total === 0 ? 0 : state.start + 1;
  const last = state.start + state.messages.length;
  $("range").textContent = `${first}–${last} of ${state.total}`;
  $("newer").disabled = state.start === 0;
  $("older").disabled = last >= state.total;
  $("list-status").textContent = state.total === 0
    ? (state.query ? "No message matches." : "No mail yet. Send some to the SMTP port: it appears here at once.")
    : "";
}

function select(i) {
  if (state.messages.length === 0) return;
  state.selected = Math.max(0, Math.min(i, state.messages.length - 1));
  document.querySelectorAll("#list .row").forEach((row, j) => {
    row.setAttribute("aria-selected", String(j === state.selected));
    if (j === state.selected) { row.focus({ preventScroll: true }); row.scrollIntoView({ block: "nearest" }); }
  });
}

// One message.

async function openMessage(id) {
  let m;
  try { m = await api(`/api/v1/message/${encodeURIComponent(id)}`); } catch (error) {
    $("list-status").textContent = `Cannot open the message: ${error.message}`;
    return;
  }
  state.open = m;
  state.remote = false;
  $("message-pane").hidden = false;
  document.querySelector(".panes").classList.add("reading");
  $("message-subject").textContent = m.Subject || "(no subject)";
  const meta = $("message-meta");
  meta.replaceChildren();
  const line = (name, value) => { if (value) meta.append(el("dt", {}, name), el("dd", {}, value)); };
  line("From", address(m.From));
  line("To", m.To.map(address).join(", "));
  line("Cc", m.Cc.map(address).join(", "));
  line("Bcc", m.Bcc.map(address).join(", "));
  line("Reply-To", m.ReplyTo.map(address).join(", "));
  line("Date", new Date(m.Date).toString());
  line("Size", size(m.Size));
  renderTags(m.Tags);
  renderEnvelope(m.Envelope);
  $("toggle-read").textContent = "Mark unread";
  $("toggle-read").setAttribute("aria-label", "Mark unread");
  showHtml();
  $("text").textContent = m.Text || "(no text part)";
  $("raw-download").href = `/api/v1/message/${m.ID}/raw`;
  $("raw-download").setAttribute("download", `${m.ID}.eml`);
  $("raw").textContent = "";
  $("headers").replaceChildren();
  const attachments = $("attachments");
  attachments.replaceChildren();
  for (const a of [...m.Attachments, ...m.Inline]) {
    // The browser saves it under the server's safe name (Content-Disposition); the list
    // shows the name without the characters that would make it read as another.
    const link = el("a", { href: `/api/v1/message/${m.ID}/part/${a.PartID}`, download: "" }, shownName(a.FileName));
    attachments.append(el("tr", {}, el("td", {}, link), el("td", {}, a.ContentType), el("td", {}, size(a.Size))));
  }
  $("tab-attachments").textContent = `Attachments (${m.Attachments.length + m.Inline.length})`;
  markRowRead(m.ID, true);
}

// Bidirectional overrides, isolates and marks: "invoice\u202Efdp.exe" would read as
// "invoiceexe.pdf". Shown without them (and without control characters).
function shownName(name) {
  const shown = (name || "").replace(/[\u0000-\u001f\u007f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "");
  return shown || "(unnamed)";
}

function showHtml() {
  const m = state.open;
  const frame = $("html-frame");
  const hasHtml = Boolean(m.HTML);
  frame.hidden = !hasHtml;
  $("no-html").hidden = hasHtml;
  $("load-remote").hidden = !hasHtml || state.remote;
  $("remote-note").textContent = state.remote
    ? "Remote images are loaded for this message."
    : "Remote images are blocked, so the sender cannot learn that you opened this.";
  frame.src = hasHtml ? `/view/${m.ID}.html${state.remote ? "?remote=1" : ""}` : "about:blank";
}

// The lesson Mailpit does not teach: which door the letter came through, and how.
function renderEnvelope(e) {
  const parts = [];
  const where = e.Port ? `arrived on port ${e.Port} (${e.Service})` : "arrived";
  parts.push(`${where}${e.Local ? ` at ${e.Local}` : ""} from ${e.Peer}`);
  if (e.Helo) parts.push(`${e.Service === "http" ? "" : "EHLO "}${e.Helo}`);
  parts.push(e.TLSSession ? `TLS ${e.TLSSession}` : (e.TLS ? "over TLS" : "not encrypted"));
  if (e.AuthUser) parts.push(`AUTH as ${e.AuthUser}`);
  parts.push(`MAIL FROM <${e.MailFrom}>`);
  parts.push(`RCPT TO ${e.RcptTo.map((r) => `<${r}>`).join(", ")}`);
  const text = $("envelope-text");
  text.replaceChildren(el("span", {}, parts.join(" — ")));
  if (e.Port) {
    text.append(" ", el("a", { href: `/#port-${e.Port}` }, `port ${e.Port} in the building directory`));
  }
}

function renderTags(tags) {
  const box = $("tags");
  box.replaceChildren();
  for (const tag of tags) {
    const remove = el("button", { type: "button", "aria-label": `Remove the tag ${tag}` }, "×");
    remove.addEventListener("click", () => setTags(tags.filter((t) => t !== tag)));
    box.append(el("span", { className: "tag" }, tag, remove));
  }
}

async function setTags(tags) {
  if (!state.open) return;
  await send("PUT", "/api/v1/tags", { IDs: [state.open.ID], Tags: tags });
  state.open.Tags = tags;
  renderTags(tags);
  refresh();
}

function markRowRead(id, read) {
  const row = document.querySelector(`#list .row[data-id="${CSS.escape(id)}"]`);
  if (row) row.classList.toggle("unread", !read);
  const m = state.messages.find((x) => x.ID === id);
  if (m) m.Read = read;
}

async function toggleRead() {
  if (!state.open) return;
  const unread = $("toggle-read").textContent === "Mark unread";
  await send("PUT", "/api/v1/messages", { IDs: [state.open.ID], Read: !unread });
  $("toggle-read").textContent = unread ? "Mark read" : "Mark unread";
  $("toggle-read").setAttribute("aria-label", $("toggle-read").textContent);
  markRowRead(state.open.ID, !unread);
}

async function deleteMessage(id) {
  await send("DELETE", "/api/v1/messages", { IDs: [id] });
  if (state.open && state.open.ID === id) closeMessage();
  refresh();
}

function closeMessage() {
  state.open = null;
  $("message-pane").hidden = true;
  $("html-frame").src = "about:blank";
  document.querySelector(".panes").classList.remove("reading");
}

async function showTab(name) {
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    $(tab.getAttribute("aria-controls")).hidden = !on;
  }
  const m = state.open;
  if (!m) return;
  if (name === "raw" && !$("raw").textContent) {
    $("raw").textContent = await api(`/api/v1/message/${m.ID}/raw`);
  }
  if (name === "headers" && !$("headers").hasChildNodes()) {
    const headers = await api(`/api/v1/message/${m.ID}/headers`);
    for (const [name, values] of Object.entries(headers)) {
      for (const value of values) {
        $("headers").append(el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, value)));
      }
    }
  }
}

// Live: Mailpit's events.

// Many events in a burst (a test sending a hundred messages) make one refresh, not a hundred.
let refreshing = null;
function refreshSoon() {
  if (refreshing === null) refreshing = setTimeout(() => { refreshing = null; refresh(); }, 150);
}

function follow() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/api/events`);
  socket.addEventListener("message", (event) => {
    const { Type, Data } = JSON.parse(event.data);
    if (Type === "stats") title(Data.Unread);
    else if (Type === "update" && "Read" in Data) markRowRead(Data.ID, Data.Read);
    else if (Type === "delete" && state.open && state.open.ID === Data.ID) { closeMessage(); refreshSoon(); }
    else if (Type === "truncate") { closeMessage(); refreshSoon(); }
    else refreshSoon();
  });
  // Back after a restart of switchboard, or a dropped connection.
  socket.addEventListener("close", () => setTimeout(follow, 2000));
}

// Wiring.

let typing;
$("search").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(search, 400);
});
$("search-form").addEventListener("submit", (event) => { event.preventDefault(); clearTimeout(typing); search(); });
function search() {
  state.query = $("search").value.trim();
  state.start = 0;
  state.selected = -1;
  refresh();
}
$("newer").addEventListener("click", () => { state.start = Math.max(0, state.start - PAGE); refresh(); });
$("older").addEventListener("click", () => { state.start += PAGE; refresh(); });
$("delete-all").addEventListener("click", async () => {
  if (!confirm("Delete every captured message?")) return;
  await send("DELETE", "/api/v1/messages", {});
  closeMessage();
  refresh();
});
$("delete-one").addEventListener("click", () => state.open && deleteMessage(state.open.ID));
$("toggle-read").addEventListener("click", toggleRead);
$("back").addEventListener("click", closeMessage);
$("load-remote").addEventListener("click", () => { state.remote = true; showHtml(); });
$("tag-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const tag = $("new-tag").value.trim();
  if (tag && state.open) setTags([...state.open.Tags, tag]);
  $("new-tag").value = "";
});
for (const tab of document.querySelectorAll('[role="tab"]')) {
  tab.addEventListener("click", () => showTab(tab.id.slice(4)));
}
document.addEventListener("keydown", (event) => {
  const typingIn = event.target.closest("input, textarea");
  if (typingIn) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (event.key === "/") { event.preventDefault(); $("search").focus(); }
  else if (event.key === "j") select(state.selected + 1);
  else if (event.key === "k") select(state.selected - 1);
  else if (event.key === "Enter" && state.selected >= 0 && !event.target.closest("a, button:not(.row)")) {
    event.preventDefault();
    openMessage(state.messages[state.selected].ID);
  } else if (event.key === "Delete") {
    const target = state.open ? state.open.ID : state.messages[state.selected] && state.messages[state.selected].ID;
    if (target) deleteMessage(target);
  }
});

refresh();
follow();
