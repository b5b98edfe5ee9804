// Lattice browser UI. Plain JS, no framework, no CDN: served from the
// daemon's binary. Every piece of text that comes from the mesh (messages,
// names, store names, replies) is set with textContent, never parsed as
// HTML; the page's Content-Security-Policy forbids inline script as well.
"use strict";

const KEY = "lattice-token";
let token = sessionStorage.getItem(KEY);
let stores = [];
let room = null;        // the chat store shown
let threadOf = null;    // message id (base64) whose thread is open
let current = null;     // the store shown in the store browser
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
function setStatus(t) { $("status").textContent = t; }

async function api(path, method, body) {
  const opts = { method: method || "GET", headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/api" + path, opts);
  const j = await r.json().catch(() => ({ error: "not JSON (HTTP " + r.status + ")" }));
  if (r.status === 401) { logout(j.error); throw new Error(j.error); }
  if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
  return j;
}
const call = (store, m, body) => api("/stores/" + encodeURIComponent(store) + "/call/" + m, "POST", body || {});

// ---- login ----

async function boot() {
  const m = location.hash.match(/^#login=(lat_[0-9a-f_]+)$/);
  if (m) {
    history.replaceState(null, "", location.pathname);
    const r = await fetch("/api/login", { method: "POST", headers: { Authorization: "Bearer " + m[1] } });
    const j = await r.json().catch(() => ({}));
    if (r.ok && j.token) { token = j.token; sessionStorage.setItem(KEY, token); }
    else { showLogin("login link refused: " + (j.error || r.status)); return; }
  }
  if (!token) { showLogin(""); return; }
  try { await api("/whoami"); } catch (e) { return; }
  start();
}

function showLogin(err) {
  $("login").hidden = false;
  $("nav").hidden = true;
  for (const v of document.querySelectorAll(".view")) v.hidden = true;
  $("login-error").textContent = err || "";
}

function logout(why) {
  token = null;
  sessionStorage.removeItem(KEY);
  showLogin(why || "");
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  token = $("login-token").value.trim();
  $("login-token").value = "";
  try { await api("/whoami"); } catch (e) { return; }
  sessionStorage.setItem(KEY, token);
  start();
});
$("logout").addEventListener("click", () => logout("logged out"));

// ---- views ----

function show(view) {
  for (const v of ["chat", "stores", "mesh"]) {
    $("view-" + v).hidden = v !== view;
    $("nav-" + v).classList.toggle("active", v === view);
  }
  if (view === "mesh") loadMesh();
  if (view === "stores") loadStores();
}
for (const b of document.querySelectorAll("#nav [data-view]")) {
  b.addEventListener("click", () => show(b.dataset.view));
}

async function start() {
  $("login").hidden = true;
  $("nav").hidden = false;
  await refreshStores();
  show("chat");
  listen();
}

async function refreshStores() {
  const c = await api("/stores");
  stores = c.stores;
  const ul = $("rooms");
  clear(ul);
  const chats = stores.filter((s) => s.type_name === "chat");
  for (const s of chats) {
    const b = el("button", "#" + s.name);
    b.dataset.store = s.id;
    b.classList.toggle("active", room && room.id === s.id);
    b.addEventListener("click", () => openRoom(s));
    const li = el("li"); li.appendChild(b); ul.appendChild(li);
  }
  if (!room && chats.length) openRoom(chats.find((s) => s.selected) || chats[0]);
}

$("room-create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/stores", "POST", { name: $("room-name").value.trim(), type: "chat" });
    $("room-name").value = "";
    await refreshStores();
  } catch (e) { $("chat-error").textContent = e.message; }
});

// ---- chat ----

function short(b64) {
  if (!b64) return "";
  const bin = atob(b64);
  let h = "";
  for (let i = 0; i < Math.min(4, bin.length); i++) h += bin.charCodeAt(i).toString(16).padStart(2, "0");
  return h;
}
function when(hlc) {
  // HLC: 48 bits of wall-clock milliseconds, then a 16-bit counter.
  const ms = Number(BigInt(hlc || "0") >> 16n);
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

async function openRoom(s) {
  room = s;
  threadOf = null;
  $("thread").hidden = true;
  $("replying").hidden = true;
  $("room-title").textContent = "#" + s.name;
  for (const b of document.querySelectorAll("#rooms button")) b.classList.toggle("active", b.dataset.store === s.id);
  await loadRoom();
}

function messageItem(m, inThread) {
  const li = el("li", null, "msg");
  li.dataset.id = m.id;
  li.appendChild(el("span", m.nick || short(m.author), "who"));
  li.appendChild(el("span", when(m.hlc), "when"));
  li.appendChild(el("span", m.deleted ? "(deleted)" : m.text, "text"));
  if (m.edited) li.appendChild(el("span", " (edited)", "when"));
  const tools = el("span", null, "tools");
  for (const r of m.reactions || []) {
    const b = el("button", r.emoji + " " + r.authors.length, "reaction");
    b.addEventListener("click", () => react(m.id, r.emoji));
    tools.appendChild(b);
  }
  for (const e of ["👍", "❤️"]) {
    const b = el("button", "+" + e);
    b.addEventListener("click", () => react(m.id, e));
    tools.appendChild(b);
  }
  if (!inThread) {
    const t = el("button", m.replies ? "thread (" + m.replies + ")" : "reply");
    t.className = "thread-open";
    t.addEventListener("click", () => openThread(m.id));
    tools.appendChild(t);
  }
  li.appendChild(el("br"));
  li.appendChild(tools);
  return li;
}

async function loadRoom() {
  if (!room) return;
  const s = room;
  try {
    const [msgs, topic] = await Promise.all([
      call(s.id, "Messages", { limit: 200 }),
      call(s.id, "Topic", {}),
    ]);
    if (room !== s) return;
    $("room-topic").textContent = topic.reply.text || "";
    const ol = $("messages");
    clear(ol);
    for (const m of msgs.reply.messages || []) {
      if (m.reply_to) continue;
      ol.appendChild(messageItem(m, false));
    }
    if (threadOf) await loadThread();
    $("chat-error").textContent = "";
  } catch (e) { $("chat-error").textContent = e.message; }
}

async function openThread(id) {
  threadOf = id;
  $("thread").hidden = false;
  $("replying").hidden = false;
  $("replying").textContent = "replying in thread";
  await loadThread();
}
$("thread-close").addEventListener("click", () => {
  threadOf = null; $("thread").hidden = true; $("replying").hidden = true;
});

async function loadThread() {
  const t = await call(room.id, "Thread", { id: threadOf });
  const root = $("thread-root");
  clear(root);
  if (t.reply.root) root.appendChild(messageItem(t.reply.root, true));
  const ol = $("thread-replies");
  clear(ol);
  for (const m of t.reply.replies || []) ol.appendChild(messageItem(m, true));
}

async function react(id, emoji) {
  try { await call(room.id, "React", { to: id, emoji }); await loadRoom(); }
  catch (e) { $("chat-error").textContent = e.message; }
}

$("composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("composer-text").value;
  if (!text.trim() || !room) return;
  try {
    if (threadOf) await call(room.id, "Reply", { to: threadOf, text });
    else await call(room.id, "Post", { text });
    $("composer-text").value = "";
    await loadRoom();
  } catch (e) { $("chat-error").textContent = e.message; }
});

// ---- live ops (SSE over fetch: EventSource cannot send a bearer header) ----

let reloadTimer = null;
async function listen() {
  const mine = token;
  for (;;) {
    if (token !== mine) return;
    try {
      const r = await fetch("/api/events", { headers: { Authorization: "Bearer " + token } });
      if (r.status === 401) { logout("token no longer valid"); return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      setStatus("live");
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          let ev = "message", data = "";
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event:")) ev = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (ev === "revoked") { logout("token revoked"); return; }
          if (ev === "op") onOp(JSON.parse(data));
        }
      }
    } catch (e) { setStatus("offline: " + e.message); }
    setStatus("reconnecting");
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onOp(ev) {
  const id = ev.store.id;
  if (!stores.some((s) => s.id === id)) { refreshStores(); }
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    if (room && room.id === id) loadRoom();
    if (current && current.id === id && !$("view-stores").hidden) loadStore(current);
  }, 50);
}

// ---- store browser: forms from the plugin's descriptor ----

async function loadStores() {
  await refreshStores();
  const ul = $("store-list");
  clear(ul);
  for (const s of stores) {
    const b = el("button", s.name + " (" + s.type_name + ")");
    b.dataset.store = s.id;
    b.addEventListener("click", () => loadStore(s));
    const li = el("li"); li.appendChild(b); ul.appendChild(li);
  }
  if (current) loadStore(current);
}

function field(f) {
  const label = el("label", f.name + " (" + (f.repeated ? "repeated " : "") + f.kind + ") ");
  let input;
  if (f.kind === "bool" && !f.repeated) {
    input = el("input"); input.type = "checkbox";
  } else if (f.kind === "enum" && !f.repeated) {
    input = el("select");
    for (const v of f.values) { const o = el("option", v); o.value = v; input.appendChild(o); }
  } else if (f.repeated || f.kind === "message" || f.kind === "map") {
    input = el("textarea"); input.rows = 2; input.cols = 50;
    input.placeholder = f.repeated ? "JSON array" : "protobuf JSON";
  } else {
    input = el("input"); input.size = 40;
    if (f.kind === "bytes") input.placeholder = "base64";
  }
  input.name = f.name;
  input.dataset.kind = f.kind;
  input.dataset.complex = String(f.repeated || f.kind === "message" || f.kind === "map");
  label.appendChild(input);
  return label;
}

function formValue(form) {
  const body = {};
  for (const i of form.querySelectorAll("[name]")) {
    if (i.type === "checkbox") { if (i.checked) body[i.name] = true; continue; }
    const v = i.value;
    if (v === "") continue;
    if (i.dataset.complex === "true") body[i.name] = JSON.parse(v);
    else if (["int32", "uint32", "float"].includes(i.dataset.kind)) body[i.name] = Number(v);
    else body[i.name] = v;
  }
  return body;
}

async function loadStore(s) {
  current = s;
  $("store-title").textContent = s.name + " (" + s.type_name + ")";
  try {
    const [status, schema, log] = await Promise.all([
      api("/stores/" + s.id),
      api("/stores/" + s.id + "/schema"),
      api("/stores/" + s.id + "/log?from=0&limit=1000"),
    ]);
    if (current !== s) return; // another store was picked meanwhile
    const dl = $("store-status");
    clear(dl);
    const st = status.status;
    for (const [k, v] of [["entries", st.entries], ["heads", st.heads.length], ["log digest", st.log_digest],
                          ["state digest", st.state_digest], ["sync", st.sync || ""]]) {
      dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v, "mono"));
    }
    const forms = $("forms");
    clear(forms);
    for (const m of schema.methods) {
      const f = el("form", null, "method");
      f.dataset.method = m.name;
      f.appendChild(el("strong", m.name + (m.query ? " (query)" : " (command)")));
      for (const fd of m.fields) f.appendChild(field(fd));
      const b = el("button", m.query ? "Run" : "Send"); b.type = "submit";
      f.appendChild(b);
      f.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          const r = await call(s.id, m.name, formValue(f));
          $("store-reply").textContent = JSON.stringify(m.query ? r.reply : { entry: r.entry, op: r.op }, null, 2);
        } catch (e) { $("store-reply").textContent = "error: " + e.message; }
      });
      forms.appendChild(f);
    }
    const ol = $("store-log");
    clear(ol);
    for (const e of log.entries.slice(-50).reverse()) {
      const li = el("li", null, "msg");
      li.appendChild(el("span", e.author.slice(0, 8) + " #" + e.seq, "who"));
      li.appendChild(el("span", JSON.stringify(e.op), "text mono"));
      ol.appendChild(li);
    }
  } catch (e) { $("store-reply").textContent = "error: " + e.message; }
}

// ---- mesh: members, peers, sync state, digests, invite/join ----

async function loadMesh() {
  const err = $("mesh-error");
  err.textContent = "";
  try {
    const n = await api("/node");
    const dl = $("node-info");
    clear(dl);
    for (const [k, v] of [["node", n.author], ["name", n.name], ["mesh", n.current_mesh || ""], ["stores", n.stores]]) {
      dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v, "mono"));
    }
  } catch (e) { err.textContent = e.message; }
  try {
    const m = await api("/meshes/current");
    const tb = $("members");
    clear(tb);
    for (const [id, name, status] of m.members) {
      const tr = el("tr");
      tr.appendChild(el("td", name)); tr.appendChild(el("td", id.slice(0, 16), "mono")); tr.appendChild(el("td", status));
      tb.appendChild(tr);
    }
    const p = await api("/peers");
    const pb = $("peers");
    clear(pb);
    for (const peer of p.peers) {
      const tr = el("tr");
      tr.appendChild(el("td", peer.id.slice(0, 16), "mono"));
      tr.appendChild(el("td", peer.connected ? "yes" : "no"));
      tr.appendChild(el("td", peer.addrs.join(", ")));
      tr.appendChild(el("td", peer.syncs.map((s) => s.store + ": " + s.result).join("; ")));
      pb.appendChild(tr);
    }
  } catch (e) { err.textContent = e.message; }
  const db = $("digests");
  clear(db);
  for (const s of stores) {
    try {
      const d = await api("/stores/" + s.id + "/digest");
      const tr = el("tr");
      tr.appendChild(el("td", s.name)); tr.appendChild(el("td", s.type_name));
      tr.appendChild(el("td", d.entries)); tr.appendChild(el("td", d.state_digest.slice(0, 16), "mono"));
      tr.appendChild(el("td", d.sync || ""));
      db.appendChild(tr);
    } catch (e) { err.textContent = e.message; }
  }
}

$("invite").addEventListener("click", async () => {
  try { const r = await api("/invite", "POST", { expires_secs: 3600 }); $("invite-token").textContent = r.token; }
  catch (e) { $("mesh-error").textContent = e.message; }
});
$("join-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try { await api("/join", "POST", { token: $("join-token").value.trim() }); await refreshStores(); loadMesh(); }
  catch (e) { $("mesh-error").textContent = e.message; }
});

boot();
