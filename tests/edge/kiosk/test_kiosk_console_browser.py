"""The installer console in a real browser: headless Chromium (Debian's ``chromium`` package, which
.ci/run installs) driven by Playwright's Python package with the system executable.

One kiosk runs ``synthetic:mixed`` (a new random scene every 1.5 s: live people and attacks) with the
console on; the browser logs in, sees the live view's frame number move, sees a grant (a ``live``
row) appear in the attempts table while the kiosk runs, and saves a screenshot of every page under
the test's tmp_path (their paths are printed). Waits are for things to happen, with generous limits
for a loaded machine; nothing asserts a speed.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import threading
import time

import pytest

from edge.kiosk.console.password import hash_password
from free_port import free_port
from kiosk_toml import write_kiosk_toml

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "installer at the door"
START_TIMEOUT_S = 180.0  # model load and the first frames on a loaded two-core machine
GRANT_TIMEOUT_S = 300.0  # synthetic:mixed seed 8 shows a live person within its first scenes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable: apt-get install chromium (.ci/run does)"),
]


def wait_for_port(port: int, thread: threading.Thread, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not thread.is_alive():
            pytest.fail("the kiosk stopped before its console answered")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the console did not answer within {deadline_s:g} s")


def wait_until(page, condition, timeout_s: float, what: str) -> None:
    """Poll ``condition()`` from here: the console's CSP forbids the eval that page.wait_for_function uses."""
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"{what} within {timeout_s:g} s")
        page.wait_for_timeout(200)


def grants(audit_path) -> int:
    with sqlite3.connect(f"file:{audit_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM attempts WHERE state = 'live'").fetchone()[0]


@pytest.fixture
def kiosk(tmp_path, shared_data):
    """A kiosk on synthetic:mixed with the console on; yields (console URL, audit path)."""
    from edge.kiosk.runtime import run_kiosk

    port = free_port()
    console = f'enabled = true\nport = {port}\npassword_hash = "{hash_password(PASSWORD, log2_n=14)}"\nmax_fps = 5'
    path = write_kiosk_toml(tmp_path, "synthetic:mixed", production=False, console=console)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            run_kiosk(path, frames=100_000, seed=8, stop=stop, model_dir=shared_data / "models")
        except BaseException as exc:  # reported by the test, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="kiosk-under-test", daemon=True)
    thread.start()
    try:
        wait_for_port(port, thread, START_TIMEOUT_S)
        yield f"http://127.0.0.1:{port}", tmp_path / "audit.sqlite"
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failure, failure
    assert not thread.is_alive(), "the kiosk did not stop within 60 s of its stop request"


def test_log_in_watch_the_door_and_see_a_grant_in_the_attempts(kiosk, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")
    url, audit_path = kiosk
    shots = {}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])  # root in a container has no user namespaces
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/live")
            assert page.url.endswith("/login")  # no session: sent to the login page
            page.fill("#password", "wrong password")
            page.click("button[type=submit]")
            assert "Wrong password." in page.inner_text("main")
            shots["login"] = tmp_path / "console-login.png"
            page.screenshot(path=shots["login"], full_page=True)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/live")

            # the live view updates: the colour picture's frame number moves, and so does the depth view's
            def frame(view: str) -> int:
                return int(page.get_attribute(f"img[data-view={view}]", "data-frame"))

            wait_until(page, lambda: frame("colour") > 0, START_TIMEOUT_S, "no colour picture")
            first = frame("colour")
            wait_until(page, lambda: frame("colour") > first, 60, "the colour picture did not change")
            wait_until(page, lambda: frame("depth") > 0, 60, "no depth picture")
            wait_until(page, lambda: page.inner_text("[data-field=state]") != "-", 30, "no state shown")
            box = page.locator("img[data-view=colour]").bounding_box()
            assert box is not None and box["width"] > 100  # laid out as a picture
            shots["live"] = tmp_path / "console-live.png"
            page.screenshot(path=shots["live"], full_page=True)

            # a grant appears in the attempts table while the kiosk runs
            deadline = time.monotonic() + GRANT_TIMEOUT_S
            while True:
                page.goto(f"{url}/attempts?state=live")
                rows = page.locator("table.attempts tbody tr.state-live")
                if rows.count() > 0:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"no live row in the attempts table within {GRANT_TIMEOUT_S:g} s")
                page.wait_for_timeout(2000)
            assert grants(audit_path) >= 1 and "live" in rows.first.inner_text()
            shots["attempts"] = tmp_path / "console-attempts.png"
            page.screenshot(path=shots["attempts"], full_page=True)

            page.goto(f"{url}/health")
            assert "camera serial" in page.inner_text("table.facts")
            shots["health"] = tmp_path / "console-health.png"
            page.screenshot(path=shots["health"], full_page=True)

            page.goto(f"{url}/config")
            assert "[console]" in page.inner_text("main") and "set (hidden)" in page.inner_text("main")
            shots["config"] = tmp_path / "console-config.png"
            page.screenshot(path=shots["config"], full_page=True)

            page.click("text=Log out")
            page.wait_for_url(f"{url}/login")
        finally:
            browser.close()
    for name, path in shots.items():
        assert path.stat().st_size > 10_000, name  # a rendered page, not an empty picture
        print(f"screenshot {name}: {path}")
    with sqlite3.connect(f"file:{audit_path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT action, outcome FROM events WHERE source = 'console'").fetchall()
    assert ("login", "refused") in rows and ("login", "ok") in rows and ("view attempts", "ok") in rows
    assert ("logout", "ok") in rows
