"use strict";
// The coverage dashboard. It reads only the API's own JSON routes (the status, the reconcile
// history, the problems) and builds the page with textContent: names and reasons come from
// lainlet and the daemons, so nothing they say is ever parsed as HTML.
(() => {
  const BAD = ["failing", "late", "never", "suspect", "invalid"];
  const STATUSES = ["failing", "late", "never", "suspect", "invalid", "paused", "pending", "ok"];
  const base = location.pathname.replace(/api\/v2\/dashboard\/?$/, "").replace(/\/?$/, "/");
  const api = (path) => base + path;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  async function getJson(path) {
    const resp = await fetch(api(path), { headers: { Accept: "application/json" } });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) {
      const why = body && body.error ? body.error : `HTTP ${resp.status}`;
      throw new Error(`${path}: ${why}`);
    }
    return { body, next: resp.headers.get("X-Backupctl-Next") || "" };
  }

  // every page of a paged route, merged: ``pick`` takes the list out of one page's body
  async function getPaged(path, pick) {
    let { body, next } = await getJson(path);
    const first = body;
    const all = [...pick(body)];
    while (next) {
      const sep = path.includes("?") ? "&" : "?";
      ({ body, next } = await getJson(`${path}${sep}next=${encodeURIComponent(next)}`));
      all.push(...pick(body));
    }
    return { first, all };
  }

  function parseTime(text) {
    if (!text || text.startsWith("0001-01-01")) return null;
    const when = new Date(text.replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(when) ? null : when;
  }

  function relative(when, now) {
    const seconds = Math.round((when - now) / 1000);
    const abs = Math.abs(seconds);
    const [n, unit] = abs < 90 ? [abs, "s"] : abs < 5400 ? [Math.round(abs / 60), "min"]
      : abs < 172800 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
    return seconds < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
  }

  function timeCell(text, now) {
    const when = parseTime(text);
    if (!when) return el("td", {}, "—");
    const absolute = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    return el("td", {}, el("time", { datetime: when.toISOString(), title: text }, relative(when, now)),
      el("br"), el("span", { class: "reason" }, absolute));
  }

  function recordCell(record, now) {
    if (!record) return el("td", {}, "—");
    const cell = timeCell(record.start, now);
    cell.prepend(el("span", { class: `status status-${record.state === "success" ? "ok" : "failing"}` },
      record.state), " ");
    if (record.reason) cell.append(el("br"), el("span", { class: "reason" }, record.reason));
    return cell;
  }

  const badge = (status) => el("span", { class: `status status-${status}` }, status);
  const worst = (items) => STATUSES.find((s) => items.some((i) => i.status === s)) || "ok";
  const isBad = (items) => items.some((i) => BAD.includes(i.status));

  function itemRow(item, now) {
    const pause = item.pause
      ? el("td", {}, badge("paused"), ` until ${item.pause.until}`,
        item.pause.reason ? el("br") : "", item.pause.reason ? el("span", { class: "reason" }, item.pause.reason) : "")
      : el("td", {}, "—");
    return el("tr", { "data-status": item.status },
      el("td", {}, item.instance),
      el("td", {}, badge(item.status), el("br"), el("span", { class: "reason" }, item.reason)),
      timeCell(item.due, now), recordCell(item.last_run, now), recordCell(item.last_success, now),
      el("td", {}, item.schedule_words, el("br"), el("span", { class: "reason mono" }, item.schedule)),
      timeCell(item.next_run, now), pause, el("td", { class: "mono" }, item.node || "—"));
  }

  function procTable(items, now) {
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["instance", "status", "last due run",
      "last run", "last success", "schedule", "next run", "pause", "node"].map((h) => el("th", {}, h)))));
    const body = el("tbody");
    let volume = null;
    const sorted = [...items].sort((a, b) => a.volume.localeCompare(b.volume) || a.instance - b.instance);
    for (const item of sorted) {
      if (item.volume !== volume) {
        volume = item.volume;
        body.append(el("tr", { class: "volume" }, el("th", { colspan: "9" }, `${volume} (${item.mode})`)));
      }
      body.append(itemRow(item, now));
    }
    table.append(body);
    return table;
  }

  function appLinks(app) {
    const a = encodeURIComponent(app);
    return el("span", { class: "links" }, "JSON: ",
      el("a", { href: api(`api/v2/app/${a}/backups/status`) }, "status"), " ",
      el("a", { href: api(`api/v2/app/${a}/cron/jobs`) }, "jobs"), " ",
      el("a", { href: api(`api/v2/app/${a}/cron/records`) }, "records"), " ",
      el("a", { href: api(`api/v2/app/${a}/audit`) }, "audit"));
  }

  function fillApp(details, items, now) {
    const byProc = new Map();
    for (const item of items) {
      if (!byProc.has(item.proc)) byProc.set(item.proc, []);
      byProc.get(item.proc).push(item);
    }
    for (const [proc, procItems] of [...byProc].sort()) {
      details.append(el("details", { class: "proc", open: "" },
        el("summary", {}, el("span", { class: "name" }, proc), badge(worst(procItems)),
          ` ${procItems.length} item${procItems.length === 1 ? "" : "s"}`),
        procTable(procItems, now)));
    }
  }

  function appGroup(app, items, now, open) {
    const counts = STATUSES.map((s) => [s, items.filter((i) => i.status === s).length]).filter(([, n]) => n);
    const summary = el("summary", {}, el("span", { class: "name" }, app),
      ...counts.flatMap(([s, n]) => [badge(s), ` ${n} `]), appLinks(app));
    const details = el("details", { class: `app${isBad(items) ? " bad" : ""}`, "data-app": app }, summary);
    let filled = false;
    const fill = () => { if (!filled) { filled = true; fillApp(details, items, now); } };
    details.addEventListener("toggle", () => { if (details.open) fill(); });
    if (open) { details.open = true; fill(); }
    return details;
  }

  function renderApps(items, query, now) {
    const byApp = new Map();
    const q = query.trim().toLowerCase();
    for (const item of items) {
      const text = `${item.app} ${item.proc} ${item.volume} ${item.instance} ${item.node} ${item.status}`;
      if (q && !text.toLowerCase().includes(q)) continue;
      if (!byApp.has(item.app)) byApp.set(item.app, []);
      byApp.get(item.app).push(item);
    }
    const rank = (list) => list.filter((i) => BAD.includes(i.status)).length;
    const apps = [...byApp].sort(([a, x], [b, y]) =>
      (isBad(y) - isBad(x)) || (STATUSES.indexOf(worst(x)) - STATUSES.indexOf(worst(y)))
      || (rank(y) - rank(x)) || a.localeCompare(b));
    const box = document.getElementById("apps");
    box.replaceChildren(...apps.map(([app, list]) => appGroup(app, list, now, Boolean(q) || isBad(list))));
    if (!apps.length) box.append(el("p", {}, q ? `nothing matches “${query}”` : "no backup is declared"));
  }

  function renderCounts(counts) {
    document.getElementById("counts").replaceChildren(...STATUSES.map((s) =>
      el("li", { class: `status-${s}`, "data-status": s }, s, el("b", {}, counts[s] || 0))));
  }

  function renderRuns(runs, now) {
    const rows = runs.map((run) => el("tr", {},
      timeCell(run.started, now),
      el("td", {}, run.ok ? badge("ok") : badge("failing"), run.error ? el("span", { class: "reason" }, ` ${run.error}`) : ""),
      el("td", {}, run.nodes ?? "—"),
      el("td", {}, (run.pushed || []).length),
      el("td", {}, Object.entries(run.failed || {}).map(([n, why]) => `${n}: ${why}`).join("; ") || "0"),
      el("td", {}, Object.keys(run.held || {}).join(", ") || "0"),
      el("td", {}, run.duration_ms === undefined ? "—" : `${run.duration_ms} ms`)));
    document.querySelector("#runs tbody").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: "7" }, "no run yet"))]));
  }

  function renderProblems(problems) {
    const rows = problems.map((p) => el("tr", {}, el("td", {}, p.kind), el("td", {}, p.app),
      el("td", {}, p.proc), el("td", { class: "mono" }, p.volume), el("td", {}, p.reason)));
    document.querySelector("#problems tbody").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: "5" }, "none"))]));
  }

  function showError(err) {
    const box = document.getElementById("error");
    box.hidden = false;
    box.append(el("p", {}, String(err.message || err)));
  }

  async function main() {
    for (const link of document.querySelectorAll("a[data-api]")) link.href = api(link.dataset.api);
    const now = new Date();
    const [status, runs, problems] = await Promise.allSettled([
      getPaged("api/v2/system/backups/status", (b) => b.items),
      getJson("api/v2/system/reconcile/history?total=10"),
      getPaged("api/v2/system/problems", (b) => b)]);
    for (const failed of [status, runs, problems].filter((r) => r.status === "rejected")) {
      showError(failed.reason);
    }
    if (status.status === "fulfilled") {
      const { first, all } = status.value;
      renderCounts(first.counts);
      renderApps(all, "", now);
      let timer = 0;
      document.getElementById("filter").addEventListener("input", (e) => {
        clearTimeout(timer);
        timer = setTimeout(() => renderApps(all, e.target.value, now), 150);
      });
      document.getElementById("asof").textContent = `${all.length} backup items in `
        + `${Object.keys(first.apps).length} apps, as of ${now.toISOString().replace(/\.\d+Z$/, " UTC")}`;
    }
    if (runs.status === "fulfilled") renderRuns(runs.value.body, now);
    if (problems.status === "fulfilled") renderProblems(problems.value.all);
    document.body.dataset.ready = "true";
  }

  main();
})();
