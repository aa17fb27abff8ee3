"""The e-SAR Card and the action buttons in a real browser (Debian's Chromium, headless).

A province signs in (the API-token form of H9's sign-in page), fills in and saves its 6-month
e-SAR Card, comes back and finds it, then submits it with a small valid PDF; the dispatcher
delivers the receipt to an aiosmtpd server; the history entry carries the card and the PDF's
SHA-256. An OPDC officer then signs another agreement from its page with the Sign button.
Screenshots go to ``RUBRONG_SCREENSHOTS`` when set. Without Chromium, chromedriver or
selenium the module skips saying why (``RUBRONG_REQUIRE_BROWSER=1`` makes that a failure).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kpi_set
from tests.support.served import prepare, serve
from tests.support.webforms import PDF, ROLES, signed_th50
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.views import history_rows, outbox_rows
from workflow.usecases.fire import FireRequest, fire
from workflow.web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


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

from aiosmtpd.controller import Controller  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from notifications.mailers import mailer_from_url  # noqa: E402
from tests.support.smtp import free_port  # noqa: E402
from workflow.usecases.dispatch import dispatch  # noqa: E402

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--window-size=1280,1000",
)


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return "250 Message accepted"


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


def _wait(driver: WebDriver, condition: Any, seconds: float = 20) -> Any:
    return WebDriverWait(driver, seconds, ignored_exceptions=[WebDriverException]).until(condition)


def _click(driver: WebDriver, by: str, value: str) -> None:
    """Click something that loads a new page, and wait until the new page has loaded."""
    driver.execute_script("window.rubrongOldPage = true")
    driver.find_element(by, value).click()
    _wait(
        driver,
        lambda d: d.execute_script(
            "return window.rubrongOldPage === undefined && document.readyState === 'complete'"
        ),
    )


def _shot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("RUBRONG_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"esar-{name}.png"))


def _ids(inbox: Inbox) -> list[str]:
    return [str(message_from_bytes(raw)["Message-ID"]) for raw in inbox.messages]


def _sign_in(driver: WebDriver, base: str, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/signin")
    driver.find_element(By.ID, "token-toggle").click()
    _wait(driver, lambda d: d.find_element(By.ID, "token").is_displayed())
    driver.find_element(By.ID, "token").send_keys(token)
    _click(driver, By.ID, "token-submit")
    _wait(driver, lambda d: d.find_elements(By.ID, "whoami"))


def test_province_fills_saves_and_submits_its_card_and_opdc_signs(
    browser: WebDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUBRONG_DOCUMENTS", str(tmp_path / "documents"))
    url = f"sqlite:///{tmp_path / 'rubrong.db'}"
    clock = VirtualClock(parse_instant("2010-08-01"))
    tokens = prepare(url, clock, ROLES)
    signed_th50(url, clock)  # TH-50 signed; the clock on 2011-04-01
    db = Database(url)
    saved_at = clock.now()
    clock.set(parse_instant("2010-09-10T10:00"))
    fire(db, clock, FireRequest("TH-58", "propose_kpis", "province:TH-58", data=kpi_set()))
    clock.set(parse_instant("2010-09-20T10:00"))
    fire(db, clock, FireRequest("TH-58", "agree", "committee"))
    clock.set(saved_at)
    pdf = tmp_path / "sar6.pdf"
    pdf.write_bytes(PDF)
    with serve(create_app(url, clock)) as base:
        _sign_in(browser, base, tokens["th50"])
        browser.get(f"{base}/agreements/TH-50")
        _click(browser, By.ID, "action-submit_sar6")
        assert browser.current_url.endswith("/agreements/TH-50/esar/sar6")
        browser.find_element(By.ID, "result-1.1").send_keys("72.5")
        Select(browser.find_element(By.ID, "level-1.1")).select_by_value("3")
        browser.find_element(By.ID, "note-1.1").send_keys("เป็นไปตามแผน")
        browser.find_element(By.ID, "result-2.1").send_keys("81")
        _shot(browser, "1-filled")
        _click(browser, By.ID, "save-draft")
        _wait(browser, lambda d: d.find_elements(By.ID, "saved"))
        browser.get(f"{base}/")  # away, and back
        browser.get(f"{base}/agreements/TH-50/esar/sar6")
        assert browser.find_element(By.ID, "result-1.1").get_attribute("value") == "72.5"
        assert browser.find_element(By.ID, "note-1.1").get_attribute("value") == "เป็นไปตามแผน"
        level = Select(browser.find_element(By.ID, "level-1.1")).first_selected_option
        assert level.get_attribute("value") == "3"
        _shot(browser, "2-draft-found")
        browser.find_element(By.ID, "document").send_keys(str(pdf))
        _click(browser, By.ID, "submit-card")
        _wait(browser, lambda d: "done=submit_sar6" in d.current_url)
        _shot(browser, "3-submitted")

        with db.read() as conn:
            entry = history_rows(conn, None, "TH-50", None)[-1]
            receipts = [
                r for r in outbox_rows(conn) if r["kind"] == "receipt" and r["milestone"] == "sar6"
            ]
        assert entry["event"] == "submit_sar6"
        assert entry["data"]["card"][0] == {
            "kpi": "1.1",
            "result": 72.5,
            "level": 3,
            "note": "เป็นไปตามแผน",
        }
        assert entry["data"]["document"]["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert [r["agreement"] for r in receipts] == ["TH-50"]

        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
        controller.start()
        try:
            mailer = mailer_from_url(f"smtp://127.0.0.1:{controller.port}", maildir=tmp_path)
            dispatch(db, mailer, clock.now())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and receipts[0]["message_id"] not in _ids(inbox):
                time.sleep(0.1)
        finally:
            controller.stop()
        assert receipts[0]["message_id"] in _ids(inbox), "the receipt did not arrive"

        _sign_in(browser, base, tokens["opdc"])
        browser.get(f"{base}/agreements/TH-58")
        _shot(browser, "4-opdc-before-sign")
        _click(browser, By.ID, "action-sign")
        _wait(browser, lambda d: "done=sign" in d.current_url)
        assert not browser.find_elements(By.ID, "action-sign")
        _shot(browser, "5-opdc-signed")
        with db.read() as conn:
            signed = history_rows(conn, None, "TH-58", None)[-1]
        assert (signed["event"], signed["actor"], signed["to"]) == ("sign", "admin", "signed")
        assert json.dumps(signed["data"]) == "{}"
    db.dispose()
