"use strict";
// The coverage dashboard. It reads only the API's own JSON routes (the status, the reconcile
// history, the problems), again every minute (``?refresh=<seconds>``, 1 to 3600), and builds the
// page with textContent: names and reasons come from lainlet and the daemons, so nothing they say
// is ever parsed as HTML. Fields it does not know are shown as text; fields missing are "—".
(() => {
  // worst first: the order of the counts, and of the apps, procs and rows within each other
  const STATUSES = ["failing", "suspect", "never", "late", "invalid", "paused", "pending", "ok"];
  const BAD = new Set(["failing", "suspect", "never", "late", "invalid"]);
  // a status this page does not know comes right after the bad ones (open, not marked red)
  const rankOf = (s) => (STATUSES.includes(s) ? STATUSES.indexOf(s) : STATUSES.indexOf("invalid") + 0.5);
  const needsLook = (s) => rankOf(s) < STATUSES.indexOf("paused");
  const ROUTES = {
    status: "api/v2/system/backups/status",
    runs: "api/v2/system/reconcile/history",
    problems: "api/v2/system/problems",
  };
  const SECTIONS = { status: ["counts-section", "apps-section"], runs: ["runs-section"],
    problems: ["problems-section"] };
  const base = location.pathname.replace(/api\/v2\/dashboard\/?$/, "").replace(/\/?$/, "/");
  const api = (path) => base + path;
  const every = (() => {  // seconds between refreshes
    const asked = new URLSearchParams(location.search).get("refresh");
    const n = asked === null || asked.trim() === "" ? NaN : Number(asked);
    return Number.isFinite(n) ? Math.min(3600, Math.max(1, Math.round(n))) : 60;
  })();
  const everyWords = every === 3600 ? "every hour" : every === 60 ? "every minute"
    : every % 60 === 0 ? `every ${every / 60} minutes` : `every ${every} s`;

  const state = {
    paused: false,
    timer: 0,
    loading: null,      // the AbortController of the refresh under way
    loads: 0,           // refreshes finished
    lastTry: null,      // when the last refresh started
    data: {},           // per route: its last good answer and when it was read ({at, ...})
    errors: new Map(),  // per route: why its last read failed
    open: new Map(),    // app (or app + proc) → open or folded, as the user left it
  };

  // ---- building blocks (text only) ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "" || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const str = (value) => (value === null || value === undefined ? "" : String(value));
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const pad = (n) => String(n).padStart(2, "0");
  const clock = (when) => `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}`;
  const utc = (when) => when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");

  // any JSON value as one line of text (for the fields this page does not know)
  function brief(value, depth = 0) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.map((v) => brief(v, depth + 1)).filter(Boolean).join(", ");
    if (isObject(value)) {
      if (depth > 2) return "…";
      return Object.entries(value).map(([k, v]) => [k, brief(v, depth + 1)]).filter(([, v]) => v)
        .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join("; ");
    }
    const text = String(value);
    return text.length > 600 ? `${text.slice(0, 600)}…` : text;
  }

  // the fields of ``obj`` not in ``known``, that say something, as "name: value" lines
  function extras(obj, known) {
    return Object.entries(obj).filter(([k]) => !known.has(k))
      .map(([k, v]) => [k, brief(v)]).filter(([, v]) => v && v !== "false")
      .map(([k, v]) => el("span", { class: "extra" }, el("b", {}, k.replace(/_/g, " ")), `: ${v}`));
  }

  function parseTime(text) {
    if (typeof text !== "string" || !text || text.startsWith("0001-01-01")) return null;
    const when = new Date(text.replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(when) ? null : when;
  }

  function span(abs) {
    const [n, unit] = abs < 90 ? [abs, "s"] : abs < 5400 ? [Math.round(abs / 60), "min"]
      : abs < 172800 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
    return `${n} ${unit}`;
  }

  function relative(when, now) {
    const seconds = Math.round((when - now) / 1000);
    if (Math.abs(seconds) < 2) return "now";
    return seconds < 0 ? `${span(-seconds)} ago` : `in ${span(seconds)}`;
  }

  const knownStatus = (s) => (STATUSES.includes(s) ? s : "other");
  const badge = (status) => el("span", { class: `status status-${knownStatus(status)}` }, str(status) || "?");
  const cell = (label, ...children) => el("td", { "data-label": label }, ...children);
  const none = (label) => el("td", { "data-label": label, class: "none" }, "—");

  function timeBits(text, now) {
    const when = parseTime(text);
    if (!when) return null;
    return [el("time", { datetime: when.toISOString(), title: str(text) }, relative(when, now)), " ",
      el("span", { class: "abs" }, utc(when))];
  }

  function timeCell(label, text, now) {
    const bits = timeBits(text, now);
    return bits ? cell(label, ...bits) : none(label);
  }

  function recordCell(label, record, now) {
    if (!isObject(record)) return none(label);
    const s = record.state === "success" ? "ok" : record.state === "running" ? "pending" : "failing";
    return cell(label, el("span", { class: `status status-${s}` }, str(record.state) || "?"), " ",
      ...(timeBits(record.start, now) || [str(record.start)]),
      record.reason ? el("span", { class: "reason" }, str(record.reason)) : "",
      record.suspect ? el("span", { class: "reason" }, `suspect: ${brief(record.suspect)}`) : "",
      record.recovered ? el("span", { class: "reason" }, `recovered ${brief(record.recovered)}`) : "");
  }

  // ---- the apps ----

  const ITEM_FIELDS = new Set(["app", "proc", "instance", "volume", "mode", "schedule", "node",
    "job_id", "status", "reason", "due", "last_run", "last_success", "pause", "expiry_held",
    "schedule_words", "next_run", "verification"]);
  const HEADINGS = ["item", "status", "last due run", "last run", "last success", "schedule",
    "next run", "pause"];

  // the item's restore drills (when DRILL_ROOT is set): what the newest one proved
  function drillNote(v, now) {
    if (!isObject(v)) return "";
    const state = str(v.state);
    const good = state === "verified";
    const speed = good && Number(v.throughput) > 0
      ? ` at ${(Number(v.throughput) / 1048576).toFixed(1)} MiB/s` : "";
    const when = v.at ? (timeBits(v.at, now) || [str(v.at)]) : [];
    return el("span", { class: "reason drill", "data-drill": state },
      `restore drill: ${state.replaceAll("_", " ")}${v.fault ? ` (${str(v.fault)} fault)` : ""}${speed} `,
      ...when, good ? "" : el("span", { class: "reason" }, str(v.why)));
  }

  function itemRow(item, now) {
    const pause = isObject(item.pause)
      ? cell("pause", badge("paused"), " until ",
        ...(timeBits(item.pause.until, now) || [str(item.pause.until) || "woken up"]),
        item.pause.reason ? el("span", { class: "reason" }, str(item.pause.reason)) : "")
      : none("pause");
    const where = [item.instance !== undefined && item.instance !== null ? `instance ${item.instance}` : "",
      str(item.mode), item.node ? `node ${item.node}` : ""].filter(Boolean).join(" · ");
    return el("tr", { "data-status": str(item.status) },
      el("td", { class: "item" }, el("span", { class: "volume" }, str(item.volume) || "—"),
        el("span", { class: "sub" }, where)),
      el("td", { class: "why" }, badge(item.status),
        item.reason ? el("span", { class: "reason" }, str(item.reason)) : "",
        drillNote(item.verification, now),
        ...extras(item, ITEM_FIELDS)),
      timeCell("last due run", item.due, now), recordCell("last run", item.last_run, now),
      recordCell("last success", item.last_success, now),
      item.schedule_words || item.schedule
        ? cell("schedule", str(item.schedule_words),
          el("span", { class: "reason mono" }, str(item.schedule)))
        : none("schedule"),
      timeCell("next run", item.next_run, now), pause);
  }

  const byRank = (a, b) => rankOf(str(a.status)) - rankOf(str(b.status))
    || str(a.volume).localeCompare(str(b.volume)) || (Number(a.instance) || 0) - (Number(b.instance) || 0)
    || str(a.node).localeCompare(str(b.node));

  function procTable(items, now) {
    return el("table", { class: "items cards" },
      el("thead", {}, el("tr", {}, ...HEADINGS.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...[...items].sort(byRank).map((item) => itemRow(item, now))));
  }

  function appLinks(app) {
    const a = encodeURIComponent(app);
    return el("span", { class: "links" }, "JSON: ",
      el("a", { href: api(`api/v2/app/${a}/backups/status`) }, "status"), " ",
      el("a", { href: api(`api/v2/app/${a}/cron/jobs`) }, "jobs"), " ",
      el("a", { href: api(`api/v2/app/${a}/cron/records`) }, "records"), " ",
      el("a", { href: api(`api/v2/app/${a}/audit`) }, "audit"));
  }

  const worst = (items) => items.reduce((w, i) => (rankOf(str(i.status)) < rankOf(w) ? str(i.status) : w), "ok");
  const lookCount = (items) => items.filter((i) => needsLook(str(i.status))).length;
  // the items by ``key`` (app or proc), the group with the worst item first, then the one with
  // the most items that need a look, then by name
  function groupBy(items, key) {
    const groups = new Map();
    for (const item of items) {
      const k = str(item[key]);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(item);
    }
    return [...groups].map(([k, list]) => ({ k, list, rank: rankOf(worst(list)), look: lookCount(list) }))
      .sort((a, b) => a.rank - b.rank || b.look - a.look || a.k.localeCompare(b.k))
      .map(({ k, list }) => [k, list]);
  }

  function statusCounts(items) {
    const counts = new Map();
    for (const item of items) counts.set(str(item.status), (counts.get(str(item.status)) || 0) + 1);
    return [...counts].sort(([a], [b]) => rankOf(a) - rankOf(b) || a.localeCompare(b));
  }

  // a <details> that opens as ``byDefault`` says unless the user opened or folded it, is built
  // (``fill``) only once open, and remembers what the user did across refreshes
  function foldable(cls, key, summary, byDefault, fill) {
    const details = el("details", { class: cls }, summary);
    let filled = false;
    const build = () => { if (!filled) { filled = true; fill(details); } };
    details.addEventListener("toggle", () => {
      if (details.open) build();
      if (details.open !== byDefault || state.open.has(key)) state.open.set(key, details.open);
    });
    const chosen = state.open.get(key);
    if (chosen === undefined ? byDefault : chosen) { details.open = true; build(); }
    return details;
  }

  function appGroup(app, items, now, filtering) {
    const bad = items.some((i) => BAD.has(str(i.status)));
    const summary = el("summary", {}, el("span", { class: "name" }, app || "—"),
      el("span", { class: "tally" }, ...statusCounts(items).map(([s, n]) => el("span", {}, badge(s), ` ${n}`))));
    const details = foldable(`app${bad ? " bad" : ""}`, app, summary,
      filtering || needsLook(worst(items)), (d) => {
        for (const [proc, procItems] of groupBy(items, "proc")) {
          d.append(foldable("proc", `${app}\u0000${proc}`,
            el("summary", {}, el("span", { class: "name" }, proc || "—"), badge(worst(procItems)),
              ` ${procItems.length} item${procItems.length === 1 ? "" : "s"}`),
            filtering || needsLook(worst(procItems)) || !needsLook(worst(items)),
            (p) => p.append(procTable(procItems, now))));
        }
        d.append(appLinks(app));
      });
    details.setAttribute("data-app", app);
    return details;
  }

  function renderApps() {
    const status = state.data.status;
    if (!status) return;
    const query = document.getElementById("filter").value;
    const q = query.trim().toLowerCase();
    const shown = q ? status.items.filter((item) => ["app", "proc", "volume", "instance", "node", "status"]
      .map((k) => str(item[k])).join(" ").toLowerCase().includes(q)) : status.items;
    const apps = groupBy(shown, "app");
    const box = document.getElementById("apps");
    box.replaceChildren(...apps.map(([app, list]) => appGroup(app, list, status.at, Boolean(q))));
    if (!apps.length) box.append(el("p", { class: "empty" }, q ? `nothing matches “${query}”` : "no backup is declared"));
  }

  function renderCounts() {
    const { counts } = state.data.status;
    const others = Object.keys(counts).filter((s) => !STATUSES.includes(s))
      .sort((a, b) => a.localeCompare(b));
    document.getElementById("counts").replaceChildren(...[...STATUSES, ...others].map((s) => {
      const n = Number(counts[s]) || 0;
      return el("li", { class: `count status-${knownStatus(s)}${n ? "" : " zero"}`, "data-status": s },
        el("span", {}, s), el("b", {}, n));
    }));
  }

  // ---- the reconcile runs and the problems ----

  function renderRuns() {
    const { list, at } = state.data.runs;
    const rows = list.filter(isObject).map((run) => el("tr", {},
      timeCell("started", run.started, at),
      cell("result", run.ok === false ? badge("failing") : run.ok ? badge("ok") : "—",
        run.error ? el("span", { class: "reason" }, str(run.error)) : ""),
      cell("nodes", str(run.nodes ?? "—")),
      cell("pushed", Array.isArray(run.pushed) ? run.pushed.length : "—"),
      cell("failed", isObject(run.failed) && Object.keys(run.failed).length
        ? Object.entries(run.failed).map(([n, why]) => `${n}: ${brief(why)}`).join("; ") : "0"),
      cell("held", isObject(run.held) && Object.keys(run.held).length ? Object.keys(run.held).join(", ") : "0"),
      cell("took", typeof run.duration_ms === "number" ? `${run.duration_ms} ms` : "—")));
    document.querySelector("#runs tbody").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: "7" }, "no run yet"))]));
  }

  const PROBLEM_FIELDS = new Set(["kind", "app", "proc", "instance", "volume", "node", "since", "reason"]);

  function renderProblems() {
    const { list, at } = state.data.problems;
    const rows = list.filter(isObject).map((p) => el("tr", { "data-kind": str(p.kind) },
      cell("kind", el("span", { class: "kind" }, str(p.kind).replace(/_/g, " ") || "—")),
      cell("where", [str(p.app), str(p.proc),
        p.instance !== null && p.instance !== undefined && p.instance !== "" ? `instance ${p.instance}` : "",
        str(p.volume), p.node ? `node ${p.node}` : ""].filter(Boolean).join(" · ") || "—"),
      p.since ? cell("since", ...(timeBits(p.since, at) || [str(p.since)])) : none("since"),
      cell("why", str(p.reason), ...extras(p, PROBLEM_FIELDS))));
    document.querySelector("#problems tbody").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: "4" }, "none"))]));
  }

  // ---- the state line, the errors, the stale marks ----

  function renderState() {
    const status = state.data.status;
    const age = status ? Math.max(0, Math.floor((Date.now() - status.at) / 1000)) : null;
    document.body.dataset.age = age === null ? "" : String(age);
    const stale = status && state.errors.has("status");
    const refresh = state.paused ? "refresh paused" : `refreshed ${everyWords}`;
    const line = [];
    if (status) {
      line.push(`${status.items.length} backup items in ${status.apps} apps · data of `,
        el("time", { datetime: status.at.toISOString(), title: utc(status.at) }, clock(status.at)));
      if (stale) line.push(" ", el("span", { class: "stale-tag" }, "stale"));
      if (state.paused || stale) line.push(` (${span(age)} old)`);
      line.push(` · ${refresh}`);
    } else if (state.errors.has("status")) {
      line.push(`no data: the last read (${clock(state.lastTry)}) failed · ${state.paused ? refresh : `retried ${everyWords}`}`);
    } else {
      line.push(state.paused ? "refresh paused before any data came" : "loading…");
    }
    const asof = document.getElementById("asof");
    const text = line.map((x) => (x instanceof Node ? x.textContent : x)).join("");
    if (asof.textContent !== text) asof.replaceChildren(...line);
    document.body.dataset.stale = String([...state.errors.keys()].some((k) => state.data[k]));
  }

  function renderErrors() {
    const box = document.getElementById("error");
    const lines = [...state.errors].map(([key, why]) => el("p", {}, why,
      el("span", { class: "sub" }, state.data[key] ? `Still shown: the data of ${clock(state.data[key].at)} (stale).`
        : "Nothing of it to show yet.")));
    // (an alert: replaced only when it says something else, so it is not read out every refresh)
    if (lines.map((p) => p.textContent).join("\n") !== [...box.children].map((p) => p.textContent).join("\n")) {
      box.replaceChildren(...lines);
    }
    box.hidden = !lines.length;
    for (const [key, ids] of Object.entries(SECTIONS)) {
      const stale = state.errors.has(key) && Boolean(state.data[key]);
      for (const id of ids) {
        const section = document.getElementById(id);
        section.classList.toggle("stale", stale);
        section.querySelector(".stale-note")?.remove();
        if (stale) {
          section.querySelector("h2").append(el("span", { class: "stale-note" },
            `stale: data of ${clock(state.data[key].at)}`));
        }
      }
    }
  }

  // ---- reading the routes ----

  async function getJson(path, signal, label) {
    let resp;
    try {
      resp = await fetch(api(path), { headers: { Accept: "application/json" }, signal, cache: "no-store" });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new Error(`${label}: no answer (${e.message || e})`);
    }
    const body = await resp.json().catch(() => undefined);
    if (!resp.ok) {
      const why = isObject(body) && typeof body.error === "string" ? body.error
        : isObject(body) && typeof body.message === "string" ? body.message : resp.statusText || "no reason given";
      const code = isObject(body) && typeof body.code === "string" ? ` (${body.code})` : "";
      throw new Error(`${label} answered ${resp.status}: ${why}${code}`);
    }
    if (body === undefined) throw new Error(`${label} answered ${resp.status} without JSON`);
    return { body, next: resp.headers.get("X-Backupctl-Next") || "" };
  }

  // every page of a paged route, merged: ``pick`` takes the list out of one page's body
  async function getPaged(path, signal, pick) {
    const label = `/${path}`;
    let { body, next } = await getJson(path, signal, label);
    const first = body;
    const all = [...pick(body, label)];
    for (let page = 2; next; page += 1) {
      if (page > 10000) throw new Error(`${label}: more than 10,000 pages`);
      const sep = path.includes("?") ? "&" : "?";
      ({ body, next } = await getJson(`${path}${sep}next=${encodeURIComponent(next)}`, signal,
        `${label} (page ${page})`));
      all.push(...pick(body, label));
    }
    return { first, all };
  }

  function list(body, label, key) {
    const found = key ? (isObject(body) ? body[key] : undefined) : body;
    if (!Array.isArray(found)) throw new Error(`${label} answered without ${key ? `an "${key}" list` : "a list"}`);
    return found;
  }

  async function readStatus(signal, at) {
    const { first, all } = await getPaged(ROUTES.status, signal, (b, label) => list(b, label, "items"));
    const items = all.filter(isObject);
    const counts = isObject(first.counts) ? first.counts
      : Object.fromEntries(statusCounts(items));
    const apps = isObject(first.apps) ? Object.keys(first.apps).length : new Set(items.map((i) => str(i.app))).size;
    return { items, counts, apps, at };
  }

  async function readRuns(signal, at) {
    const { body } = await getJson(`${ROUTES.runs}?total=10`, signal, `/${ROUTES.runs}`);
    return { list: list(body, `/${ROUTES.runs}`), at };
  }

  async function readProblems(signal, at) {
    const { all } = await getPaged(ROUTES.problems, signal, (b, label) => list(b, label));
    return { list: all, at };
  }

  const RENDER = { status: () => { renderCounts(); renderApps(); }, runs: renderRuns, problems: renderProblems };

  async function load() {
    if (state.loading) return;  // one refresh at a time
    clearTimeout(state.timer);
    const controller = state.loading = new AbortController();
    document.body.dataset.loading = "true";
    const at = new Date();
    const keys = ["status", "runs", "problems"];
    const results = await Promise.allSettled([readStatus(controller.signal, at),
      readRuns(controller.signal, at), readProblems(controller.signal, at)]);
    if (state.loading === controller) {
      state.loading = null;
      delete document.body.dataset.loading;
    }
    if (!controller.signal.aborted) {  // (aborted: paused meanwhile; nothing of it is used)
      state.lastTry = at;
      keys.forEach((key, i) => {
        const result = results[i];
        if (result.status === "fulfilled") {
          state.data[key] = result.value;
          state.errors.delete(key);
          RENDER[key]();
        } else {
          state.errors.set(key, String(result.reason && result.reason.message || result.reason));
        }
      });
      state.loads += 1;
      document.body.dataset.loads = String(state.loads);
      schedule();
    }
    renderErrors();
    renderState();
    document.body.dataset.ready = "true";
  }

  function schedule() {
    clearTimeout(state.timer);
    if (!state.paused) state.timer = setTimeout(load, every * 1000);
  }

  function setPaused(paused) {
    state.paused = paused;
    const button = document.getElementById("pause");
    button.textContent = paused ? "Resume refresh" : "Pause refresh";
    button.setAttribute("aria-pressed", String(paused));
    document.body.dataset.paused = String(paused);
    if (paused) {
      clearTimeout(state.timer);
      if (state.loading) {  // nothing more is fetched: the refresh under way stops here
        state.loading.abort();
        state.loading = null;
        delete document.body.dataset.loading;
      }
      renderState();
    } else {
      load();  // resuming reads at once
    }
  }

  function main() {
    for (const link of document.querySelectorAll("a[data-api]")) link.href = api(link.dataset.api);
    let timer = 0;
    document.getElementById("filter").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(renderApps, 150);
    });
    document.getElementById("pause").addEventListener("click", () => setPaused(!state.paused));
    setInterval(renderState, 1000);  // the age of the data (no request)
    load();
  }

  main();
})();
