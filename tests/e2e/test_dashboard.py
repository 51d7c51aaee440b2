"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against the local
runner: what a person sees, not what the page's script returns, on a wide screen (1440x900) and on a
phone (390x844). Saves ``artifacts/dashboard-1440.png`` and ``artifacts/dashboard-390.png``."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import reference
from tests.e2e.conftest import Runner, require

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">volume gone'
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDE, PHONE = (1440, 900), (390, 844)
ORDER = ["failing", "suspect", "never", "late", "invalid", "paused", "pending", "ok"]  # worst first
STATUS_ROUTE = "**/api/v2/system/backups/status*"
DYNAMODB_DOWN = {"error": 'DynamoDB is unavailable: <img src=x onerror="document.body.dataset.pwned=1">',
                 "code": "store_unavailable"}


@contextlib.contextmanager
def dashboard(url: str, viewport: tuple[int, int] = WIDE, prepare: Callable[[Any], None] | None = None,
              allow: tuple[str, ...] = ()) -> Iterator[Any]:
    """The page at ``url`` in headless Chromium in a window of ``viewport``, once its script has
    drawn it (``prepare`` gets the page before it loads); on leaving, that nothing went to the
    console as an error (but for messages containing one of ``allow``) and no script failed."""
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.on("console", lambda m: errors.append(m.text)
                if m.type == "error" and not any(a in m.text for a in allow) else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        if prepare:
            prepare(page)
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        yield page
        browser.close()
    assert errors == []


def layout_width(page: Any) -> tuple[int, int]:
    """How wide the page lays out and how wide its window is: no horizontal scroll while the first
    is at most the second."""
    width, window = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    return width, window


def bottom(locator: Any) -> float:
    """Where ``locator`` ends, from the top of the page (the first screen ends at its height)."""
    box = locator.bounding_box()
    assert box is not None
    return box["y"] + box["height"]


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def until(page: Any, condition: str, timeout: float = 20.0) -> None:
    """Wait until the JavaScript ``condition`` holds in the page, checking it every 0.1 s (as
    ``page.wait_for_function`` would: that one evaluates its condition with ``eval``, which the
    page's Content-Security-Policy refuses; ``page.evaluate`` goes through the debugger, which it
    does not govern)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        page.wait_for_timeout(100)


def inert(page: Any) -> None:
    """Nothing a daemon or the API said was run as HTML."""
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None


def job_of(runner: Runner, app: str, volume: str, instance: int) -> str:
    jobs = requests.get(runner.url(f"/api/v2/app/{app}/cron/jobs"), timeout=10).json()
    return next(e["job"]["id"] for e in jobs if e["job"]["args"]["volume"] == volume
                and e["job"]["args"]["instanceNo"] == instance)


def failed_run(runner: Runner, job_id: str, app: str = "mysql") -> dict:
    resp = requests.post(runner.url(f"/api/v2/app/{app}/cron/jobs/{job_id}/actions/run"), timeout=10)
    assert resp.status_code == 200, resp.text
    rid = resp.json()["rid"]
    record = runner.wait(lambda: (r := runner.record(app, rid)) and r["state"] != "running" and r)
    assert record["state"] == "failed", record
    return record


@pytest.fixture
def scene(runner: Runner):
    """mysql's volume gone and its backup run (failing, with a reason a daemon could have written
    to break the page), and one of hello's jobs asleep for a stated reason; all undone after."""
    volume = runner.file("mysql", "mysql.worker.master", 1, "/var/lib/mysql", "x").parent
    aside = volume.with_name("mysql-aside")
    volume.rename(aside)
    sleeping = job_of(runner, "hello", "/var/log/hello", 2)
    backed_up = requests.post(runner.url(f"/api/v2/app/hello/cron/jobs/{sleeping}/actions/run"),
                              timeout=10)  # a volume never backed up stays "never", paused or not
    runner.finished("hello", backed_up.json()["rid"])
    try:
        record = failed_run(runner, job_of(runner, "mysql", "/var/lib/mysql", 1))
        later = time.time() + 2  # the latest run: after the real one, within the clock skew
        hostile = {**record, "rid": f"{int(later)}{uuid.uuid4().hex}", "reason": HOSTILE,
                   "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later)),
                   "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(later + 1))}
        assert requests.post(runner.url(f"/api/v2/system/notify?token={runner.notify_token}"), json=hostile,
                             timeout=10).status_code == 200
        slept = requests.post(runner.url(f"/api/v2/app/hello/cron/jobs/{sleeping}/actions/sleep"),
                              data={"until": "2d", "reason": "disk swap on node 12"}, timeout=10)
        assert slept.status_code == 200, slept.text
        yield requests.get(runner.url("/api/v2/system/backups/status"), timeout=10).json()
    finally:
        requests.post(runner.url(f"/api/v2/app/hello/cron/jobs/{sleeping}/actions/wakeup"), timeout=10)
        aside.rename(volume)


@pytest.mark.timeout(180)
def test_the_dashboard_shows_the_failing_item_first_the_paused_one_marked_and_the_counts(
        runner: Runner, scene: dict) -> None:
    from playwright.sync_api import expect

    with dashboard(runner.url("/")) as page:

        # the counts, as the status route has them (a record of an earlier test's run may land
        # between the page's read and ours: then both are read again)
        for _ in range(3):
            shown = {s: int(page.inner_text(f"#counts li[data-status={s}] b"))
                     for s in scene["counts"]}
            counts = requests.get(runner.url("/api/v2/system/backups/status"), timeout=10).json()["counts"]
            if shown == counts:
                break
            page.reload()
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        assert shown == counts and shown["failing"] == 1 and shown["paused"] == 1
        asof = page.inner_text("#asof")
        assert "loading" not in asof and "refreshed every minute" in asof

        # the app with the failing item comes first, open, with the reason shown as text
        first = page.locator("details.app").first
        assert first.get_attribute("data-app") == "mysql" and first.get_attribute("open") is not None
        failing = first.locator("tr[data-status=failing]")
        assert failing.count() == 1 and HOSTILE in failing.inner_text()
        assert "every day at 01:00 UTC" in failing.inner_text()  # the schedule in words
        inert(page)

        # a healthy app is folded; opening it shows the paused item marked, with its reason
        hello = page.locator("details.app[data-app=hello]")
        assert hello.get_attribute("open") is None
        hello.locator("summary").first.click()
        paused = hello.locator("tr[data-status=paused]")
        expect(paused).to_have_count(1)  # its rows are built when it opens
        assert "paused" in paused.inner_text() and "disk swap on node 12" in paused.inner_text()

        # the reconcile's runs and the problems are there
        assert page.locator("#runs tbody tr").count() >= 1
        assert "badcron" in page.inner_text("#problems")

        # a wide screen: the items are a table's rows, and nothing spills out sideways
        row = page.locator("tr[data-status=failing]")
        assert row.evaluate("r => getComputedStyle(r).display") == "table-row"
        width, window = layout_width(page)
        assert width <= window == WIDE[0]
        screenshot(page, "dashboard-1440.png")

        # the filter keeps only what matches
        page.fill("#filter", "mysql")
        expect(page.locator("details.app")).to_have_count(1)  # (the page's CSP forbids eval)
        assert page.locator("details.app").first.get_attribute("data-app") == "mysql"


@pytest.mark.timeout(180)
def test_on_a_phone_the_counts_and_the_worst_item_are_on_the_first_screen(
        runner: Runner, scene: dict) -> None:
    with dashboard(runner.url("/"), viewport=PHONE) as page:
        width, window = layout_width(page)
        assert width <= window == PHONE[0]

        # the counts, then the first item of the first app: the worst there is, a card, whole
        assert bottom(page.locator("#counts")) <= PHONE[1]
        card = page.locator("details.app").first.locator("tr[data-status]").first
        assert card.get_attribute("data-status") == "failing" and HOSTILE in card.inner_text()
        assert bottom(card) <= PHONE[1]
        assert card.evaluate("r => getComputedStyle(r).display") == "block"
        inert(page)
        screenshot(page, "dashboard-390.png")


@pytest.fixture
def hello_failing(runner: Runner) -> Iterator[Callable[[], dict]]:
    """A function that makes one of hello's items fail (its volume gone, its backup run); the
    volume is put back after the test (the failed record stays the item's latest run)."""
    volume = runner.file("hello", "hello.web.web", 1, "/var/log/hello", "x").parent
    aside = volume.with_name("log-aside")

    def fail() -> dict:
        volume.rename(aside)
        return failed_run(runner, job_of(runner, "hello", "/var/log/hello", 1), app="hello")

    try:
        yield fail
    finally:
        if aside.exists():
            aside.rename(volume)


def loads(page: Any) -> int:
    return int(page.get_attribute("body", "data-loads") or 0)


@pytest.mark.timeout(180)
def test_the_page_refreshes_itself_keeps_what_the_user_folded_and_filtered_and_pauses(
        runner: Runner, hello_failing: Callable[[], dict]) -> None:
    from playwright.sync_api import expect

    with dashboard(runner.url("/?refresh=1")) as page:
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/v2/" in r.url else None)
        page.evaluate("window.sameDocument = true")  # gone if the page were loaded again
        assert "refreshed every 1 s" in page.inner_text("#asof")
        assert page.get_attribute("details.app[data-app=hello]", "open") is None

        # the user folds mysql (failing, so open by default); then a new failure appears, in
        # hello: hello opens, its failing row first; mysql stays folded
        page.locator("details.app[data-app=mysql] > summary").click()
        until(page, "!document.querySelector('details.app[data-app=mysql]').open")
        hello_failing()
        until(page, "document.querySelector('details.app[data-app=hello] tr[data-status=failing]')",
              timeout=30)
        assert page.evaluate("window.sameDocument") is True
        statuses = page.eval_on_selector_all("details.app[data-app=hello] tr[data-status]",
                                             "rows => rows.map((r) => r.dataset.status)")
        assert statuses[0] == "failing" and len(statuses) == 4
        assert statuses == sorted(statuses, key=ORDER.index)  # failing, then paused, pending, ok
        assert page.get_attribute("details.app[data-app=mysql]", "open") is None
        assert page.locator("details.app").first.get_attribute("data-app") in ("mysql", "hello")

        # the filter survives refreshes
        page.fill("#filter", "hello")
        expect(page.locator("details.app")).to_have_count(1)
        after = loads(page)
        until(page, f"Number(document.body.dataset.loads) >= {after + 2}")
        assert page.input_value("#filter") == "hello"
        expect(page.locator("details.app")).to_have_count(1)

        # paused: nothing is asked while the data grows older by several refresh periods
        page.click("#pause")
        assert page.inner_text("#pause") == "Resume refresh"
        assert page.get_attribute("#pause", "aria-pressed") == "true"
        until(page, "Number(document.body.dataset.age) >= 2")
        before = len(asked)
        until(page, "Number(document.body.dataset.age) >= 5")
        assert len(asked) == before and "refresh paused" in page.inner_text("#asof")

        # resumed: it reads again at once
        paused_at = loads(page)
        page.click("#pause")
        until(page, f"Number(document.body.dataset.loads) > {paused_at}")
        assert len(asked) > before and "refreshed every 1 s" in page.inner_text("#asof")
        assert page.evaluate("window.sameDocument") is True


@pytest.mark.timeout(180)
def test_an_error_replaces_loading_and_the_last_good_data_stays_marked_stale(runner: Runner) -> None:
    def down(route: Any) -> None:
        route.fulfill(status=503, content_type="application/json", body=json.dumps(DYNAMODB_DOWN))

    prepare = lambda page: page.route(STATUS_ROUTE, down)  # noqa: E731
    with dashboard(runner.url("/?refresh=1"), viewport=PHONE, prepare=prepare,
                   allow=("Failed to load resource",)) as page:
        # no data yet: the page says which route failed and why, instead of "loading…"
        error = page.inner_text("#error")
        assert "/api/v2/system/backups/status answered 503" in error
        assert DYNAMODB_DOWN["error"] in error and "store_unavailable" in error
        assert "loading" not in page.inner_text("#asof") and "failed" in page.inner_text("#asof")
        assert "badcron" in page.inner_text("#problems")  # the other routes answered
        inert(page)

        # it answers again: the data, no error
        page.unroute(STATUS_ROUTE)
        until(page, "document.querySelector('#error').hidden")
        assert page.locator("details.app").count() == 3
        assert page.get_attribute("body", "data-stale") == "false"

        # it fails again: the last good data stays, marked stale, and the error says so
        page.route(STATUS_ROUTE, down)
        until(page, "document.body.dataset.stale === 'true'")
        assert page.locator("details.app").count() == 3
        assert "stale" in page.inner_text("#asof") and "stale" in page.inner_text("#counts-section h2")
        assert "(stale)" in page.inner_text("#error") and DYNAMODB_DOWN["error"] in page.inner_text("#error")

        # and a route that does not answer at all is named too
        page.route("**/api/v2/system/reconcile/history*", lambda route: route.abort())
        until(page, "document.querySelector('#error').innerText.includes('history: no answer')")
        inert(page)
        width, window = layout_width(page)
        assert width <= window == PHONE[0]
        screenshot(page, "dashboard-stale-390.png")


def with_unknown_fields(route: Any) -> None:
    """The status route's answer as a newer backend might give it: fields this page does not know,
    fields missing, a status it does not know, and names too long for a phone's line."""
    body = route.fetch().json()
    first = body["items"][0]
    first["attestation"] = {"state": "signed", "at": "2026-01-01T00:00:00Z"}
    first["node_problem"] = {"node": first["node"], "reason": "docker unreachable",
                             "since": "2026-01-01T00:00:00Z"}
    long = "x" * 300
    body["items"].append({"app": f"a{long}", "status": "quarantined", "volume": f"/{long}",
                          "reason": long, "proc": f"p{long}"})
    body["counts"]["quarantined"] = 1
    route.fulfill(json=body)


def with_unknown_problems(route: Any) -> None:
    body = route.fetch().json()
    body += [{"kind": "node", "node": "127.0.0.99", "since": "2026-01-01T00:00:00Z",
              "reason": "the node did not answer for 3 runs"},
             {"kind": "brand_new", "app": "y" * 300, "proc": "", "instance": None,
              "detail": {"why": "a field of its own"}}]
    route.fulfill(json=body)


@pytest.mark.timeout(180)
def test_fields_the_page_does_not_know_or_misses_are_shown_as_text_on_a_phone(runner: Runner) -> None:
    def prepare(page: Any) -> None:
        page.route(STATUS_ROUTE, with_unknown_fields)
        page.route("**/api/v2/system/problems*", with_unknown_problems)

    with dashboard(runner.url("/?refresh=100000"), viewport=PHONE, prepare=prepare) as page:
        assert "refreshed every hour" in page.inner_text("#asof")  # (at most 3600 s)
        assert page.inner_text("#counts li[data-status=quarantined] b") == "1"
        unknown = page.locator("details.app[data-app^=axxx]")
        assert unknown.get_attribute("open") is not None  # a status it does not know: open
        assert unknown.locator("tr[data-status=quarantined]").count() == 1
        apps = page.inner_text("#apps")
        assert "attestation: state: signed" in apps and "docker unreachable" in apps
        problems = page.inner_text("#problems")
        assert "node 127.0.0.99" in problems and "the node did not answer for 3 runs" in problems
        assert "brand new" in problems and "a field of its own" in problems
        width, window = layout_width(page)
        assert width <= window == PHONE[0]
        screenshot(page, "dashboard-unknown-390.png")


APPS, INSTANCES = 100, 25  # x 2 volumes: 5,000 items
BIG_NODES = [f"127.0.0.{i}" for i in range(101, 111)]


def big_spec() -> dict:
    """100 apps, 25 instances each, two backed-up volumes per instance, on 10 nodes."""
    spec = {}
    for a in range(APPS):
        proc = f"app{a:03d}.web.web"
        items = [{"procname": proc, "volume": v, "schedule": "0 0 2 * * *", "expire": "7d",
                  "mode": "full"} for v in ("/data", "/logs")]
        annotation = json.dumps({"mountpoint": [f"app{a:03d}.lain.local"], "backup": items})
        spec[proc] = [{"Annotation": annotation, "InstanceNo": n,
                       "Containers": [{"Id": f"c{a}-{n}", "Ip": f"172.20.{a}.{n}",
                                       "NodeIp": BIG_NODES[(a + n) % len(BIG_NODES)],
                                       "NodeName": "n"}]} for n in range(1, INSTANCES + 1)]
    return spec


@pytest.fixture
def big_cluster(env, ddb, lainlet, monkeypatch):
    """The app served by chalice's own local server (in this process) over a 5,000-item cluster:
    pushed to ten stand-in daemons once, so the items are pending, and one of them failing."""
    import threading

    from chalice.config import Config
    from chalice.local import create_local_server

    from app import app
    from chalicelib.deps import get_deps
    from chalicelib.usecases import reconcile
    from scripts.simcluster.backupd import BackupdStandIn
    from scripts.simcluster.server import free_port

    port = free_port(BIG_NODES)
    monkeypatch.setenv("BACKUPD_PORT", str(port))
    from chalicelib.settings import get_settings

    get_settings.cache_clear()
    lainlet.spec = big_spec()
    daemons = [BackupdStandIn(ip, port).start() for ip in BIG_NODES]
    try:
        deps = get_deps()
        reconcile.run(deps)
        node_jobs = deps.state.states()[BIG_NODES[1]].jobs or []
        job = next(j for j in node_jobs if j["args"].get("app") == "app000")
        deps.records.put(reference.record_of(job, "failed", deps.clock(), reason="disk full"))
        server = create_local_server(app, Config(chalice_stage="local"), "127.0.0.1", free_port())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server.server_port}"
        server.server.shutdown()
    finally:
        for d in daemons:
            d.stop()


@pytest.mark.timeout(180)
def test_five_thousand_items_stay_readable(big_cluster: str) -> None:
    from playwright.sync_api import expect

    with dashboard(big_cluster + "/api/v2/dashboard") as page:
        assert page.inner_text("#asof").startswith("5000 backup items in 100 apps")
        assert int(page.inner_text("#counts li[data-status=failing] b")) == 1
        assert int(page.inner_text("#counts li[data-status=pending] b")) == 4999
        # the one app with a failing item is first and open; the 99 healthy ones are folded and
        # their rows not even built
        assert page.locator("details.app").count() == APPS
        assert page.locator("details.app").first.get_attribute("data-app") == "app000"
        assert page.locator("details.app[open]").count() == 1
        assert page.locator("tr[data-status]").count() == 2 * INSTANCES
        assert page.locator("tr[data-status]").first.get_attribute("data-status") == "failing"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-5000.png"))
        page.fill("#filter", "app042")
        expect(page.locator("details.app")).to_have_count(1)
        expect(page.locator("tr[data-status=pending]")).to_have_count(2 * INSTANCES)


def with_drills(route: Any) -> None:
    """The status with restore drills on: one item's drill failed on a bad archive, one verified."""
    body = route.fetch().json()
    body["items"][0]["verification"] = {
        "state": "verify_failed", "fault": "archive", "at": "2026-01-01T02:00:00Z",
        "why": "the restore failed: exit status 2 (the archive could not be read)"}
    body["items"][1]["verification"] = {
        "state": "verified", "fault": "", "at": "2026-01-01T02:00:00Z", "throughput": 52428800,
        "why": "restored"}
    route.fulfill(json=body)


def test_each_item_says_what_its_restore_drill_proved(runner: Runner) -> None:
    with dashboard(runner.url("/?refresh=100000"), viewport=PHONE,
                   prepare=lambda page: page.route(STATUS_ROUTE, with_drills)) as page:
        for details in page.locator("details.app").all():
            if details.get_attribute("open") is None:
                details.locator("summary").first.click()
        notes = page.locator("[data-drill]").all_inner_texts()
        assert any("restore drill: verify failed (archive fault)" in n and "exit status 2" in n
                   for n in notes), notes
        assert any("restore drill: verified at 50.0 MiB/s" in n for n in notes), notes
        width, window = layout_width(page)
        assert width <= window == PHONE[0]
        screenshot(page, "dashboard-drills-390.png")
