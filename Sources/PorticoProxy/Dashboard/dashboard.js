// Portico's dashboard: one EventSource on /dashboard/events, a snapshot a second and each
// local reply as it happens. Plain DOM and SVG, no libraries.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const workerHistory = new Map();   // function name -> worker counts, last 60 snapshots
const replies = [];
const MAX_REPLIES = 12;

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.setAttribute("class", value);
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return value.toFixed(2) + " ms";
  if (value < 100) return value.toFixed(1) + " ms";
  return Math.round(value) + " ms";
}

function rate(value) { return value >= 100 ? Math.round(value).toString() : value.toFixed(1); }

function backendLabel(backend) {
  const weight = backend.weight !== undefined && backend.weight !== null ? ` (${backend.weight})` : "";
  return (backend.kind === "function" ? "ƒ " : "") + backend.name + weight;
}

function renderTopology(snapshot) {
  const svg = document.getElementById("topology");
  const width = svg.clientWidth || 1200;
  const backends = [];
  const seen = new Set();
  for (const route of snapshot.routes) {
    for (const backend of route.backends) {
      const key = backend.kind + ":" + backend.name;
      if (!seen.has(key)) { seen.add(key); backends.push(backend); }
    }
  }
  const rows = Math.max(snapshot.listeners.length, snapshot.routes.length, backends.length, 1);
  const rowHeight = 34;
  const height = Math.max(150, 28 + rows * rowHeight);
  svg.style.height = height + "px";
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const nodeWidth = Math.min(260, width * 0.24);
  const columns = [24, (width - nodeWidth) / 2, width - nodeWidth - 24];
  const labels = ["listeners", "routes", "backends"];
  columns.forEach((x, index) => svg.append(el("svg:text", { x, y: 14, class: "column" }, labels[index])));

  function place(count, index) {
    const top = 26 + ((rows - count) * rowHeight) / 2;
    return top + index * rowHeight;
  }
  const edges = el("svg:g");
  svg.append(edges);
  const listenerY = snapshot.listeners.map((_, index) => place(snapshot.listeners.length, index));
  const routeY = snapshot.routes.map((_, index) => place(snapshot.routes.length, index));
  const backendY = new Map(backends.map((backend, index) => [backend.kind + ":" + backend.name, place(backends.length, index)]));
  const h = 26;
  function curve(x1, y1, x2, y2, hot) {
    const mid = (x1 + x2) / 2;
    edges.append(el("svg:path", { d: `M${x1},${y1 + h / 2} C${mid},${y1 + h / 2} ${mid},${y2 + h / 2} ${x2},${y2 + h / 2}`, class: hot ? "edge hot" : "edge" }));
  }
  snapshot.routes.forEach((route, routeIndex) => {
    const hot = route.requestsPerSecond > 0;
    // An HTTP route is served on every HTTP listener.
    snapshot.listeners.forEach((listener, index) => {
      if (listener.kind !== "tcp") curve(columns[0] + nodeWidth, listenerY[index], columns[1], routeY[routeIndex], hot);
    });
    for (const backend of route.backends) {
      curve(columns[1] + nodeWidth, routeY[routeIndex], columns[2], backendY.get(backend.kind + ":" + backend.name), hot);
    }
  });
  function node(x, y, kind, title, sub, attrs = {}) {
    const group = el("svg:g", Object.assign({ class: "node " + kind, transform: `translate(${x},${y})` }, attrs));
    group.append(el("svg:rect", { width: nodeWidth, height: h }));
    group.append(el("svg:text", { x: 10, y: 17 }, title));
    if (sub) group.append(el("svg:text", { x: nodeWidth - 10, y: 17, "text-anchor": "end", class: "sub" }, sub));
    svg.append(group);
  }
  snapshot.listeners.forEach((listener, index) => node(columns[0], listenerY[index], "listener", listener.name, `${listener.kind} ${listener.address}`));
  snapshot.routes.forEach((route, index) => node(columns[1], routeY[index], "route", route.name,
    route.requestsPerSecond > 0 ? `${rate(route.requestsPerSecond)} req/s` : "", { "data-route": route.name }));
  for (const backend of backends) {
    let sub = backend.kind;
    if (backend.kind === "function") {
      const fn = snapshot.functions.find((f) => f.name === backend.name);
      if (fn) sub = `${fn.workers.length} worker${fn.workers.length === 1 ? "" : "s"}`;
    } else if (backend.kind === "service") {
      const service = snapshot.services.find((s) => s.name === backend.name);
      if (service) sub = `${service.endpoints.length} endpoint${service.endpoints.length === 1 ? "" : "s"}`;
    }
    node(columns[2], backendY.get(backend.kind + ":" + backend.name), backend.kind, backendLabel(backend), sub);
  }
}

function renderRoutes(snapshot) {
  const body = document.querySelector("#routes tbody");
  body.replaceChildren(...snapshot.routes.map((route) => {
    const errors = route.errorRatio * 100;
    return el("tr", { "data-route": route.name },
      el("td", { title: route.name }, route.name),
      el("td", { title: route.backends.map(backendLabel).join(", ") }, route.backends.map(backendLabel).join(", ")),
      el("td", { class: "num" }, rate(route.requestsPerSecond)),
      el("td", { class: "num" + (errors > 0 ? " status-5" : "") }, errors.toFixed(errors > 0 && errors < 10 ? 1 : 0) + "%"),
      el("td", { class: "num" }, ms(route.p50Ms)),
      el("td", { class: "num" }, ms(route.p99Ms)));
  }));
  if (snapshot.routes.length === 0) body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "no routes")));
}

function sparkline(counts) {
  const width = 300, height = 26;
  const max = Math.max(1, ...counts);
  const step = width / 59;
  const offset = 60 - counts.length;
  const points = counts.map((count, index) => `${((offset + index) * step).toFixed(1)},${(height - 2 - (count / max) * (height - 6)).toFixed(1)}`).join(" ");
  return el("svg:svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" },
    el("svg:line", { x1: 0, y1: height - 1, x2: width, y2: height - 1, class: "base" }),
    el("svg:polyline", { points }));
}

function renderFunctions(snapshot) {
  const box = document.getElementById("functions");
  const legend = el("div", { class: "legend" },
    el("span", {}, el("i", { style: "background: var(--warn)" }), "starting"),
    el("span", {}, el("i", { style: "background: var(--ok)" }), "ready"),
    el("span", {}, el("i", { style: "background: var(--accent)" }), "busy"),
    el("span", {}, el("i", { style: "background: var(--idle)" }), "draining / stopping"));
  const items = snapshot.functions.map((fn) => {
    const counts = workerHistory.get(fn.name) || [];
    counts.push(fn.workers.length);
    while (counts.length > 60) counts.shift();
    workerHistory.set(fn.name, counts);
    const states = Object.entries(fn.workersByState).map(([state, count]) => `${count} ${state}`).join(", ");
    return el("div", { class: "function", "data-function": fn.name, "data-workers": fn.workers.length, "data-state": fn.state },
      el("div", {}, el("span", { class: "name" }, fn.name), " ",
        el("span", { class: "badge " + (fn.state === "failed" ? "bad" : "none") }, fn.state),
        fn.queueLength > 0 ? el("span", { class: "badge off" }, `${fn.queueLength} queued`) : null,
        el("div", { class: "muted small" }, [fn.revision, fn.mode, states].filter(Boolean).join(" · "))),
      el("div", { class: "count" }, fn.workers.length, el("small", {}, "workers")),
      el("div", { class: "workers", title: states || "no workers" },
        ...fn.workers.map((worker) => el("span", {
          class: "worker " + (worker.state === "ready" && worker.inFlight > 0 ? "busy" : worker.state),
          title: `worker ${worker.id} ${worker.state}${worker.pid ? " pid " + worker.pid : ""}, ${worker.inFlight} in flight`,
        }))),
      sparkline(counts));
  });
  for (const name of [...workerHistory.keys()]) {
    if (!snapshot.functions.some((fn) => fn.name === name)) workerHistory.delete(name);
  }
  box.replaceChildren(legend, ...(items.length ? items : [el("div", { class: "empty" }, "no functions")]));
}

function renderServices(snapshot) {
  const body = document.querySelector("#services tbody");
  const rows = [];
  for (const service of snapshot.services) {
    service.endpoints.forEach((endpoint, index) => {
      const health = endpoint.healthy === undefined || endpoint.healthy === null
        ? el("span", { class: "badge none" }, "not checked")
        : el("span", { class: "badge " + (endpoint.healthy ? "ok" : "bad") }, endpoint.healthy ? "healthy" : "unhealthy");
      const ejection = endpoint.ejected === undefined || endpoint.ejected === null
        ? el("span", { class: "badge none" }, "–")
        : el("span", { class: "badge " + (endpoint.ejected ? "bad" : "ok") }, endpoint.ejected ? "ejected" : "in rotation");
      rows.push(el("tr", { "data-endpoint": endpoint.address },
        el("td", {}, index === 0 ? service.name : ""),
        el("td", {}, endpoint.address), el("td", {}, health), el("td", {}, ejection),
        el("td", { class: "num", title: `${endpoint.idleConnections} idle` }, endpoint.openConnections)));
    });
  }
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "no services"))]));
}

function renderReplies() {
  const body = document.querySelector("#replies tbody");
  body.replaceChildren(...(replies.length ? replies.map((reply) => el("tr", {},
    el("td", {}, new Date(reply.time_unix_ms).toLocaleTimeString()),
    el("td", { class: "num status-" + String(reply.status)[0] }, reply.status),
    el("td", { title: reply.route }, reply.route),
    el("td", { title: reply.path }, reply.path),
    el("td", { class: reply.reason ? "" : "muted" }, reply.reason || "–"))) : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "none yet"))]));
}

function connect() {
  const status = document.getElementById("connection");
  const source = new EventSource("/dashboard/events");
  source.addEventListener("open", () => { status.textContent = "live"; status.className = "badge on"; });
  source.addEventListener("error", () => { status.textContent = "reconnecting"; status.className = "badge off"; });
  source.addEventListener("snapshot", (event) => {
    const snapshot = JSON.parse(event.data);
    document.getElementById("generation").textContent = `generation ${snapshot.generation}`;
    document.getElementById("taps").textContent = snapshot.taps > 0 ? `${snapshot.taps} tap${snapshot.taps === 1 ? "" : "s"} open` : "";
    renderTopology(snapshot);
    renderRoutes(snapshot);
    renderFunctions(snapshot);
    renderServices(snapshot);
    document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
  });
  source.addEventListener("reply", (event) => {
    replies.unshift(JSON.parse(event.data));
    replies.length = Math.min(replies.length, MAX_REPLIES);
    renderReplies();
  });
}

renderReplies();
connect();
