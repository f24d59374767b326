// The topology page: draws the virtual network from the API and keeps it current.
//
// Every POLL_MS it reads the list endpoints (all pages) and derives the graph: datapaths
// (compound nodes, green border when their vna is connected, red dashed when not), the
// VM interfaces (vifs) inside the datapath they are bound to, networks, routers (route
// links) with their ports (the simulated interfaces their routes name) on networks.
// It redraws only when the derived graph changed.  A `#trace=<JSON>` fragment
// ({"uuids": [...], "verdict": "...", "drop": "..."}, printed by `vnctl trace --ui`)
// highlights those nodes and the edges between them; a trace not delivered lists only what
// the packet reached and marks `drop` (where it stopped; else the last uuid drawn) red, so
// a dropped trace never looks like a delivered one.  With `auth = token` on the webapi, the token typed
// in the header is kept in sessionStorage and sent as `Authorization: Bearer`.
"use strict";

const API = "../api/1.0";
const POLL_MS = 2000;
const PAGE = 1000;
const TOKEN_KEY = "vnet-token";

const state = { cy: null, drawn: null, trace: null, ready: false, polls: 0, redraws: 0 };
window.vnetUi = state;  // for the browser test (node counts) and for curious operators

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function listAll(path) {
  const items = [];
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const response = await fetch(`${API}/${path}${sep}limit=${PAGE}&offset=${items.length}`,
                                 { headers: headers() });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).message || message; } catch (e) { /* not JSON */ }
      throw new Error(`${path}: ${message}`);
    }
    const page = await response.json();
    items.push(...page.items);
    if (!page.items.length || items.length >= page.total_count) return items;
  }
}

async function readModel() {
  const [datapaths, networks, interfaces, routeLinks, routes] = await Promise.all(
    ["datapaths", "networks", "interfaces", "route_links", "routes"].map(listAll));
  return { datapaths, networks, interfaces, routeLinks, routes };
}

function networksOf(iface) {
  const nets = new Set();
  for (const mac of iface.mac_leases || []) {
    for (const lease of mac.ip_leases || []) nets.add(lease.network_uuid);
  }
  return [...nets];
}

function addressesOf(iface) {
  return (iface.mac_leases || []).flatMap(m => (m.ip_leases || []).map(l => l.ipv4_address));
}

// The graph as cytoscape elements, sorted so that equal models give equal JSON.
function elements(model) {
  const nodes = [];
  const edges = [];
  const known = new Set();
  const node = (id, label, kind, extra = {}) => {
    known.add(id);
    nodes.push({ data: { id, label, kind, ...extra } });
  };
  const edge = (a, b, kind) => {
    if (known.has(a) && known.has(b)) edges.push({ data: { id: `${a}--${b}`, source: a, target: b, kind } });
  };
  for (const dp of model.datapaths) {
    node(dp.uuid, `${dp.display_name || dp.uuid}\n${dp.uuid}`, "datapath",
         { connected: dp.is_connected ? "yes" : "no" });
  }
  for (const nw of model.networks) {
    node(nw.uuid, `${nw.display_name || nw.uuid}\n${nw.ipv4_network}/${nw.ipv4_prefix}`,
         "network", { mode: nw.network_mode });
  }
  for (const rl of model.routeLinks) node(rl.uuid, rl.display_name || rl.uuid, "router");
  const ifaces = Object.fromEntries(model.interfaces.map(i => [i.uuid, i]));
  const ports = new Set(model.routes.map(r => r.interface_uuid));
  for (const uuid of [...ports].sort()) {
    const iface = ifaces[uuid];
    if (iface) node(uuid, addressesOf(iface).join(", ") || uuid, "port");
  }
  for (const iface of model.interfaces) {
    if (iface.mode !== "vif") continue;
    const binding = iface.binding || {};
    const parent = binding.state === "bound" && known.has(binding.datapath_uuid)
      ? { parent: binding.datapath_uuid } : {};
    node(iface.uuid, `${iface.display_name || iface.uuid}\n${addressesOf(iface).join(", ")}`,
         "vif", { bound: binding.state === "bound" ? "yes" : "no", ...parent });
    for (const nw of networksOf(iface)) edge(iface.uuid, nw, "lease");
  }
  for (const route of model.routes) {
    edge(route.route_link_uuid, route.interface_uuid, "router-port");
    edge(route.interface_uuid, route.network_uuid, "route");
  }
  const unique = list => [...new Map(list.map(e => [e.data.id, e])).values()]
    .sort((a, b) => a.data.id.localeCompare(b.data.id));
  return unique(nodes).concat(unique(edges));
}

const STYLE = [
  { selector: "node", style: { label: "data(label)", "text-wrap": "wrap", "font-size": 10,
                               "text-valign": "bottom", "text-margin-y": 4 } },
  { selector: "node[kind='datapath']", style: {
      shape: "round-rectangle", "background-color": "#dde8f4", "border-width": 3,
      "border-color": "#2a6", "text-valign": "top", "text-margin-y": -4, padding: 14 } },
  { selector: "node[kind='datapath'][connected='no']", style: {
      "border-color": "#c33", "border-style": "dashed" } },
  { selector: "node[kind='network']", style: {
      shape: "ellipse", "background-color": "#fc6", width: 44, height: 44 } },
  { selector: "node[kind='router']", style: {
      shape: "diamond", "background-color": "#69c", width: 40, height: 40 } },
  { selector: "node[kind='port']", style: {
      shape: "ellipse", "background-color": "#9cf", width: 16, height: 16, "font-size": 8 } },
  { selector: "node[kind='vif']", style: {
      shape: "round-rectangle", "background-color": "#ccc", width: 30, height: 22 } },
  { selector: "node[kind='vif'][bound='no']", style: { "border-width": 2, "border-style": "dashed",
                                                         "border-color": "#c33" } },
  { selector: "edge", style: { width: 2, "line-color": "#999", "curve-style": "bezier" } },
  { selector: "edge[kind='router-port']", style: { "line-color": "#69c" } },
  { selector: "edge.trace", style: { "line-color": "#f0a", width: 5, "z-index": 10 } },
  { selector: "node.trace", style: { "border-width": 4, "border-color": "#f0a",
                                     "border-style": "solid" } },
  // after .trace so it wins; double and filled, unlike a disconnected datapath's dashes
  { selector: "node.trace-drop", style: { "border-width": 6, "border-color": "#e00",
                                          "border-style": "double", "background-color": "#fbb" } },
];

// Rows, top to bottom: routers, their ports, networks, datapaths with their VMs inside,
// then the VMs bound nowhere.  Deterministic: the same model is always drawn the same.
const GAP = 170;
const ROWS = { router: 60, port: 170, network: 290, datapath: 440 };
const VM_COLUMNS = 3;
const VM_STEP = { x: 95, y: 70 };

function positions(els) {
  const pos = {};
  const byKind = kind => els.filter(e => e.data.kind === kind && !e.data.source);
  const edges = els.filter(e => e.data.source);
  const networks = byKind("network").sort((a, b) =>
    (a.data.mode === "physical") - (b.data.mode === "physical") || a.data.id.localeCompare(b.data.id));
  networks.forEach((n, i) => { pos[n.data.id] = { x: i * GAP, y: ROWS.network }; });
  const networkOf = {};  // port or vif -> its first network
  for (const e of edges) {
    if (pos[e.data.target] && !(e.data.source in networkOf)) networkOf[e.data.source] = e.data.target;
  }
  const ports = {};  // router -> its ports
  for (const e of edges.filter(e => e.data.kind === "router-port")) {
    (ports[e.data.source] = ports[e.data.source] || []).push(e.data.target);
  }
  const x = id => (pos[networkOf[id]] || { x: 0 }).x;
  byKind("router").forEach((r, i) => {
    const mine = ports[r.data.id] || [];
    mine.forEach(p => { pos[p] = { x: x(p) + (i % 3) * 25, y: ROWS.port + (i % 3) * 20 }; });
    const xs = mine.map(p => pos[p].x);
    pos[r.data.id] = { x: xs.length ? xs.reduce((a, b) => a + b) / xs.length : i * GAP,
                       y: ROWS.router - (i % 2) * 30 };
  });
  const vifs = byKind("vif").sort((a, b) => x(a.data.id) - x(b.data.id) || a.data.id.localeCompare(b.data.id));
  let left = 0;
  let bottom = ROWS.datapath;
  for (const dp of byKind("datapath")) {
    const inside = vifs.filter(v => v.data.parent === dp.data.id);
    inside.forEach((v, i) => {
      pos[v.data.id] = { x: left + (i % VM_COLUMNS) * VM_STEP.x,
                         y: ROWS.datapath + Math.floor(i / VM_COLUMNS) * VM_STEP.y };
      bottom = Math.max(bottom, pos[v.data.id].y);
    });
    if (!inside.length) pos[dp.data.id] = { x: left, y: ROWS.datapath };
    left += Math.max(1, Math.min(inside.length, VM_COLUMNS)) * VM_STEP.x + 80;
  }
  vifs.filter(v => !v.data.parent).forEach((v, i) => {
    pos[v.data.id] = { x: i * VM_STEP.x, y: bottom + 140 };
  });
  return pos;
}

function parseTrace() {
  const match = /(?:^#|&)trace=([^&]*)/.exec(location.hash);
  if (!match) return null;
  try {
    const value = JSON.parse(decodeURIComponent(match[1]));
    return { uuids: Array.isArray(value.uuids) ? value.uuids.map(String) : [],
             verdict: String(value.verdict || ""), drop: value.drop ? String(value.drop) : null };
  } catch (e) {
    return { uuids: [], verdict: "", error: "unreadable #trace fragment" };
  }
}

function highlight() {
  const banner = document.getElementById("trace");
  const trace = state.trace;
  if (!state.cy) return;
  state.cy.elements().removeClass("trace trace-drop");
  if (!trace) { banner.hidden = true; return; }
  const on = new Set(trace.uuids);
  state.cy.nodes().filter(n => on.has(n.id())).addClass("trace");
  state.cy.edges().filter(e => on.has(e.source().id()) && on.has(e.target().id())).addClass("trace");
  let drop = null;
  if (trace.verdict && trace.verdict !== "delivered") {
    const drawn = trace.uuids.filter(u => state.cy.getElementById(u).length);
    drop = trace.drop && state.cy.getElementById(trace.drop).length ? trace.drop : drawn.pop();
    if (drop) state.cy.getElementById(drop).addClass("trace-drop");
  }
  banner.hidden = false;
  banner.className = trace.verdict;
  banner.textContent = trace.error ||
    `trace: ${trace.verdict}${drop ? " at " + drop : ""} (${on.size} objects)`;
}

function draw(els) {
  const json = JSON.stringify(els);
  if (json === state.drawn) return false;
  state.drawn = json;
  state.redraws += 1;
  if (!state.cy) {
    state.cy = cytoscape({ container: document.getElementById("graph"), style: STYLE,
                           elements: els, wheelSensitivity: 0.3 });
  } else {
    state.cy.json({ elements: els });  // cytoscape diffs by id: kept nodes stay put
  }
  const pos = positions(els);
  state.cy.layout({ name: "preset", positions: n => pos[n.id()] || { x: 0, y: 0 }, fit: true,
                    padding: 40 }).run();
  highlight();
  return true;
}

// "1 router", "2 routers": every noun of the header takes a plain -s.
function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const model = await readModel();
    const changed = draw(elements(model));
    state.polls += 1;
    state.ready = true;
    status.className = "";
    status.textContent = [[model.datapaths.length, "datapath"], [model.networks.length, "network"],
      [model.routeLinks.length, "router"], [model.interfaces.filter(i => i.mode === "vif").length, "VM"]]
      .map(([n, noun]) => plural(n, noun)).join(", ") +
      ` · ${changed ? "redrawn" : "unchanged"} ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.className = "error";
    status.textContent = String(err.message || err);
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  const token = document.getElementById("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
});
window.addEventListener("hashchange", () => { state.trace = parseTrace(); highlight(); });
state.trace = parseTrace();
poll();
