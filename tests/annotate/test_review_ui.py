"""The review view in headless Chromium at a laptop's 1366x768, logged in as a registered annotator.

Kept as an artefact: the screenshot, under $CINECTRL_TEST_ARTIFACTS (default build/test-artifacts/)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from annotate import review, server

from .test_review import register, tasks_of

pytestmark = [pytest.mark.labelstudio, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = (1366, 768)

BOXES_JS = """
const box = el => { const r = el.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom,
                                                                  w: r.width, h: r.height}; };
return {
  view: {w: window.innerWidth, h: window.innerHeight},
  players: [...document.querySelectorAll('.lsf-video-canvas')].map(box),
  radios: [...document.querySelectorAll('.cc-side input[type=radio]')].map(el => ({...box(el.closest('label') || el),
                                                                                   checked: el.checked})),
  anyChecked: [...document.querySelectorAll('input[type=radio], input[type=checkbox]')].filter(
      el => el.checked && el.closest('.lsf-main-view')).length,
  text: document.querySelector('.lsf-main-view').innerText,
};"""

FRAMES_JS = "return [...document.querySelectorAll('.lsf-frames-control')].map(e => e.textContent.trim())"


def _artifact_dir() -> Path:
    out = Path(os.environ.get("CINECTRL_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _inside(box: dict, view: dict) -> bool:
    return box["l"] >= 0 and box["t"] >= 0 and box["r"] <= view["w"] + 0.5 and box["b"] <= view["h"] + 0.5


@pytest.fixture()
def browser(tmp_path):
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("chromium + chromium-driver not installed (bash scripts/install-system-deps.sh)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(driver))
    drv.set_page_load_timeout(120)
    try:
        yield drv
    finally:
        drv.quit()


def _login(drv, url: str, email: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get(url + "/user/login/")
    drv.find_element(By.NAME, "email").send_keys(email)
    drv.find_element(By.NAME, "password").send_keys(password)
    drv.find_element(By.CSS_SELECTOR, "form button[type=submit], form input[type=submit]").click()
    WebDriverWait(drv, 60).until(lambda d: "/user/login" not in d.current_url)


def _open_stream(drv, url: str, project_id: int) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    drv.get(f"{url}/projects/{project_id}/data?labeling=1")
    WebDriverWait(drv, 120, poll_frequency=0.5).until(lambda d: d.execute_script(
        "const v = [...document.querySelectorAll('video')];"
        "return v.length === 3 && v.every(x => x.readyState >= 2 && x.videoWidth > 0)"
        " && document.querySelectorAll('.cc-side input[type=radio]').length === 2;"))
    time.sleep(1.0)   # layout settles after the media load


def test_review_view_fits_a_laptop_and_starts_with_no_verdict(ls_server, catalog_factory, people, netaudit_log,
                                                            browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    cat = catalog_factory(1)
    register(cat, ls_server, people, alice="annotator")
    res = review.push(cat, ls_server)
    task = tasks_of(ls_server, res.project_id)[1]
    alice = people["alice"]
    _login(browser, ls_server.url, alice.email, alice.password)
    _open_stream(browser, ls_server.url, res.project_id)

    seen = browser.execute_script(BOXES_JS)
    shot = _artifact_dir() / f"review-{VIEWPORT[0]}x{VIEWPORT[1]}.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    view = seen["view"]
    assert view["w"] == VIEWPORT[0]
    # a fresh task: no verdict (or anything else) selected
    assert [r["checked"] for r in seen["radios"]] == [False, False] and seen["anyChecked"] == 0
    # reference, other and difference players, all inside the viewport; reference and other the same size
    players = seen["players"]
    assert len(players) == 3 and all(_inside(b, view) for b in players), (view, players)
    assert abs(players[0]["w"] - players[1]["w"]) < 1 and abs(players[0]["h"] - players[1]["h"]) < 1
    assert min(b["w"] for b in players) > 250 and min(b["h"] for b in players) > 150
    # the verdict is visible without scrolling, beside the players
    assert all(_inside(b, view) for b in seen["radios"]), (view, seen["radios"])
    # headers say what changed; the table has requested / read-back / EXIF for both clips; keys are listed
    for text in ("aperture f/8 -> f/2.8", "Reference: f/8", "Other: f/2.8", "Other read-back", "Ref. EXIF",
                 "Alt+Space", "Video hop size", "Automatic check"):
        assert text in seen["text"], text

    # a submit without a verdict is refused: no annotation reaches the server
    submit = browser.find_element(By.XPATH, "//button[normalize-space()='Submit']")
    if submit.is_enabled():
        submit.click()
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.CONTROL, Keys.ENTER)
    time.sleep(2)
    assert review.client(ls_server).annotations.list(id=task.id) == []

    # frame stepping: with the labeling setting "Video hop size" at 1, one step is one frame, on all three players
    browser.execute_script("const k = 'labelStudio:settings';"
                           "const s = JSON.parse(localStorage.getItem(k) || '{}'); s.videoHopSize = 1;"
                           "localStorage.setItem(k, JSON.stringify(s));")
    _open_stream(browser, ls_server.url, res.project_id)
    assert browser.execute_script(FRAMES_JS) == ["1 of 12"] * 3
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Step forward']").click()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(FRAMES_JS) == ["2 of 12"] * 3)

    # choosing a verdict (hotkey a) and submitting does create the annotation
    browser.find_element(By.XPATH, "//label[contains(., 'accept')]").click()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.cc-side input[type=radio]')].map(x => x.checked)") == [True, False])
    browser.find_element(By.XPATH, "//button[normalize-space()='Submit']").click()
    WebDriverWait(browser, 30, poll_frequency=0.5).until(
        lambda d: len(review.client(ls_server).annotations.list(id=task.id)) == 1)
    out = review.pull(cat, ls_server)
    assert out.added == 1 and cat.reviews(1)[0]["verdict"] == "accept" and cat.reviews(1)[0]["counted"] == 1

    # nothing in the page went anywhere but this server; the server itself tried no other host
    urls = set()
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.add(msg["params"]["request"]["url"])
    network = {u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")}   # not chrome:// pages
    outside = sorted(u for u in network if not u.startswith(ls_server.url + "/"))
    assert len(network) > 10 and outside == [], outside
    assert not netaudit_log.exists() or netaudit_log.read_text() == "", netaudit_log.read_text()
    log = (Path(server.data_dir_for(cat.path)) / "server.log").read_text().lower()
    assert "sentry" not in log and "ingest" not in log
