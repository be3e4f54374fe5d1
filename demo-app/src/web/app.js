// The cart page: renders the state the server pushes over server-sent events and sends
// edits as JSON. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let offline = false;

function showError(message) {
  $("error").textContent = message || "";
}

async function post(path, body) {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    showError(data.error || `request failed (${res.status})`);
    return null;
  }
  showError("");
  return data;
}

function edit(body) {
  return post("/api/edit", body);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

let lastCart = "";

function renderCart(cart) {
  // Re-render only when the cart changed, so typing in a note is not interrupted.
  const json = JSON.stringify(cart);
  if (json === lastCart) return;
  lastCart = json;
  const body = $("items");
  const focused = document.activeElement && document.activeElement.dataset.noteFor;
  body.replaceChildren();
  for (const item of cart.items) {
    const note = el("input", {
      value: item.note, placeholder: "note", className: "note-input", maxLength: 1000,
      dataset: { noteFor: item.name },
      onchange: (e) => edit({ kind: "note", name: item.name, text: e.target.value }),
    });
    const row = el("tr", { dataset: { item: item.name } },
      el("td", { className: "name" }, item.name),
      el("td", { className: "qty" },
        el("button", { className: "dec", title: "one fewer", onclick: () => edit({ kind: "dec", name: item.name, n: 1 }) }, "−"),
        el("span", { className: "qty-value" }, String(item.qty)),
        el("button", { className: "inc", title: "one more", onclick: () => edit({ kind: "inc", name: item.name, n: 1 }) }, "+")),
      el("td", { className: "note" }, note),
      el("td", { className: "actions" },
        el("button", { className: "remove", title: "remove", onclick: () => edit({ kind: "remove", name: item.name }) }, "✕")));
    body.append(row);
    if (focused === item.name) note.focus();
  }
  $("empty").hidden = cart.items.length > 0;
}

function renderStatus(st) {
  $("me").textContent = `replica ${st.short}`;
  offline = st.offline;
  $("switch").classList.toggle("off", offline);
  $("net").textContent = offline ? "offline" : "online";
  $("offline-toggle").textContent = offline ? "Go online" : "Go offline";
  $("pending").textContent = st.pending_ops;
  $("logged").textContent = st.log_ops;
  $("version").textContent = st.version.map(([r, c]) => `${r}:${c}`).join("  ") || "—";
  $("ticket").textContent = st.ticket;
  const peers = $("peers");
  peers.replaceChildren();
  if (st.peers.length === 0) peers.append(el("li", { className: "muted" }, "none yet"));
  for (const p of st.peers) {
    const state = p.connected ? (p.in_sync ? "in sync" : "syncing") : "not connected";
    peers.append(el("li", { dataset: { peer: p.node } },
      el("span", { className: `dot ${p.status}` }), el("span", { className: "mono" }, p.short), " ",
      el("span", { className: "muted" }, `${p.status} · ${state}${p.addr ? " · " + p.addr : ""}`)));
  }
}

$("add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("add-name").value.trim();
  const qty = Number($("add-qty").value) || 1;
  if (!name) return;
  if (await edit({ kind: "add", name, qty })) {
    $("add-name").value = "";
    $("add-qty").value = "1";
  }
});

$("offline-toggle").addEventListener("click", () => post("/api/offline", { offline: !offline }).then((st) => st && renderStatus(st)));

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("state", (e) => {
    const state = JSON.parse(e.data);
    renderCart(state.cart);
    renderStatus(state.status);
    document.body.dataset.ready = "1";
  });
  events.onerror = () => {
    $("me").textContent = "reconnecting…";
  };
}
connect();
