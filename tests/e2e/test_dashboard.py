"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against the local
runner: what a person sees, not what the page's script returns. Saves ``artifacts/dashboard.png``."""

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


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def inert(page: Any) -> None:
    """Nothing a daemon or the API said was run as HTML."""
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None


def job_of(runner: Runner, app: str, volume: str, instance: int) -> str:
    jobs = requests.get(runner.url(f"/api/v2/app/{app}/cron/jobs"), timeout=10).json()
    return next(e["job"]["id"] for e in jobs if e["job"]["args"]["volume"] == volume
                and e["job"]["args"]["instanceNo"] == instance)


def failed_run(runner: Runner, job_id: str) -> dict:
    resp = requests.post(runner.url(f"/api/v2/app/mysql/cron/jobs/{job_id}/actions/run"), timeout=10)
    assert resp.status_code == 200, resp.text
    record = runner.wait(lambda: (r := runner.record("mysql", resp.json())) and r["state"] != "running" and r)
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
        hello.locator("summary").click()
        paused = hello.locator("tr[data-status=paused]")
        expect(paused).to_have_count(1)  # its rows are built when it opens
        assert "paused" in paused.inner_text() and "disk swap on node 12" in paused.inner_text()

        # the reconcile's runs and the spec's problems are there
        assert page.locator("#runs tbody tr").count() >= 1
        assert "badcron" in page.inner_text("#problems")

        width, window = layout_width(page)
        assert width <= window == WIDE[0]
        screenshot(page, "dashboard.png")

        # the filter keeps only what matches
        page.fill("#filter", "mysql")
        expect(page.locator("details.app")).to_have_count(1)  # (the page's CSP forbids eval)
        assert page.locator("details.app").first.get_attribute("data-app") == "mysql"


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
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-5000.png"))
        page.fill("#filter", "app042")
        expect(page.locator("details.app")).to_have_count(1)
        expect(page.locator("tr[data-status=pending]")).to_have_count(2 * INSTANCES)
