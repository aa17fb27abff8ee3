"""The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver.

Sign in, read the matrix, filter it, open an agreement, step back in time with "as of", switch
to English, look at it on a phone-sized screen. Screenshots land in the test's tmp dir.
``.ci/browser.sh`` installs ``chromium`` and ``chromium-driver``; without them the test skips
saying why (``RUBRONG_REQUIRE_BROWSER=1`` turns that into a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import kpi_set
from tests.served import prepare, serve
from workflow.clock import VirtualClock
from workflow.engine import FireRequest, fire
from workflow.store import Database
from workflow.tick import tick
from workflow.timeutil import parse_instant
from workflow.web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,900",
)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: run .ci/browser.sh (Debian chromium + chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install selenium)"
    return None


if (problem := _missing()) is not None:
    if os.environ.get("RUBRONG_REQUIRE_BROWSER") == "1":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver (nothing is downloaded)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _history(url: str) -> VirtualClock:
    """TH-50 proposes, is agreed and signed; a tick in between marks other provinces missed."""
    clock = VirtualClock(parse_instant("2010-09-01"))
    db = Database(url)
    steps = [
        ("2010-09-10T10:00", "propose_kpis", "province:TH-50", kpi_set()),
        ("2010-09-20T10:00", "agree", "committee", None),
        ("2010-11-26T10:00", "sign", "admin", None),
    ]
    for when, event, role, data in steps:
        clock.set(parse_instant(when))
        if event == "sign":
            tick(db, clock, parse_instant("2010-11-25"))
        fire(db, clock, FireRequest("TH-50", event, role, data=data))
    db.dispose()
    return clock


def _click(driver: WebDriver, by: str, value: str) -> None:
    """Click something that loads a new page, and wait until the new page has loaded."""
    driver.execute_script("window.rubrongOldPage = true")
    driver.find_element(by, value).click()
    WebDriverWait(driver, 15, ignored_exceptions=[WebDriverException]).until(
        lambda d: d.execute_script(
            "return window.rubrongOldPage === undefined && document.readyState === 'complete'"
        )
    )


def _rows(driver: WebDriver) -> list[str]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#matrix tbody tr")
    return [str(row.get_attribute("data-agreement")) for row in rows]


def test_sign_in_filter_open_and_go_back_in_time(browser: WebDriver, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rubrong.db'}"
    tokens = prepare(url, VirtualClock(parse_instant("2010-08-01")), {"opdc": "admin"})
    clock = _history(url)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serve(create_app(url, clock)) as base:
        browser.get(f"{base}/")
        assert browser.current_url == f"{base}/signin"  # not signed in: sent to sign in
        browser.find_element(By.ID, "token").send_keys("not-a-token")
        _click(browser, By.ID, "signin-submit")
        assert "โทเค็นไม่ถูกต้อง" in browser.find_element(By.ID, "signin-error").text
        browser.find_element(By.ID, "token").send_keys(tokens["opdc"])
        _click(browser, By.ID, "signin-submit")

        assert browser.current_url == f"{base}/"
        assert "ตารางการปฏิบัติตามกำหนด" in browser.find_element(By.TAG_NAME, "h1").text
        assert "opdc (admin)" in browser.find_element(By.ID, "whoami").text
        assert len(_rows(browser)) == 93
        browser.save_screenshot(str(shots / "1-matrix.png"))

        Select(browser.find_element(By.ID, "filter-group")).select_by_value("north-upper-1")
        _click(browser, By.ID, "filter-submit")
        assert _rows(browser) == ["TH-50", "TH-51", "TH-52", "TH-58", "north-upper-1"]
        Select(browser.find_element(By.ID, "filter-status")).select_by_value("missed")
        _click(browser, By.ID, "filter-submit")
        assert _rows(browser) == ["TH-51", "TH-52", "TH-58", "north-upper-1"]  # TH-50 was on time
        Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
        Select(browser.find_element(By.ID, "filter-milestone")).select_by_value("propose_kpis")
        _click(browser, By.ID, "filter-submit")
        cells = browser.find_elements(By.CSS_SELECTOR, "#matrix tbody tr td.st")
        assert [c.get_attribute("data-status") for c in cells] == ["met", *["missed"] * 4]
        assert cells[0].text == "✓" and cells[1].text == "✗"
        browser.save_screenshot(str(shots / "2-filtered.png"))

        _click(browser, By.LINK_TEXT, "TH-50")
        assert browser.current_url == f"{base}/agreements/TH-50"
        assert browser.find_element(By.ID, "state-now").get_attribute("data-state") == "signed"
        events = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
        assert [e.get_attribute("data-event") for e in events] == ["sign", "agree", "propose_kpis"]
        browser.save_screenshot(str(shots / "3-agreement.png"))

        date = browser.find_element(By.ID, "as-of")
        browser.execute_script("arguments[0].value = '2010-09-15'", date)
        _click(browser, By.ID, "as-of-submit")
        assert browser.current_url.endswith("/agreements/TH-50?as_of=2010-09-15")
        assert browser.find_element(By.ID, "state-then").get_attribute("data-state") == "proposed"
        events = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
        assert [e.get_attribute("data-event") for e in events] == ["propose_kpis"]
        assert "เสนอตัวชี้วัดแล้ว" in browser.find_element(By.ID, "as-of-note").text
        browser.save_screenshot(str(shots / "4-as-of.png"))

        browser.execute_script(
            "arguments[0].value = '2010-09-09'", browser.find_element(By.ID, "as-of")
        )
        _click(browser, By.ID, "as-of-submit")
        assert browser.find_element(By.ID, "state-then").get_attribute("data-state") == "drafted"
        assert browser.find_elements(By.ID, "no-entries")

        _click(browser, By.ID, "lang-switch")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
        assert (
            "As recorded by the end of 2010-09-09" in browser.find_element(By.ID, "as-of-note").text
        )
        _click(browser, By.ID, "nav-matrix")  # English is remembered
        assert "Compliance matrix" in browser.find_element(By.TAG_NAME, "h1").text

        _click(browser, By.ID, "nav-diagram")
        assert browser.find_element(By.ID, "mermaid").text.startswith("stateDiagram-v2")
        _click(browser, By.ID, "nav-scores")
        assert "intact" in browser.find_element(By.ID, "chain").text
        _click(browser, By.ID, "nav-outbox")
        assert browser.find_elements(By.CSS_SELECTOR, "#outbox tbody tr")

        browser.set_window_size(390, 844)  # a phone
        browser.get(f"{base}/?group=north-upper-1")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px on a phone"
        browser.save_screenshot(str(shots / "5-phone.png"))

        _click(browser, By.ID, "signout")
        browser.get(f"{base}/")
        assert browser.current_url == f"{base}/signin"
    assert len(list(shots.glob("*.png"))) == 5
