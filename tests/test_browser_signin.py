"""Signing in as a person in a real browser (Debian's Chromium, headless, via chromedriver).

A province asks for a sign-in link, the letter arrives at a real SMTP server (aiosmtpd), the
link opens a session and the browser lands on the province's agreement; the session cookie is
HttpOnly (scripts cannot read it), SameSite=Lax, and holds no token. Then a password sign-in,
and sign-out from the page header. Without chromium/chromedriver the module skips saying why
(``RUBRONG_REQUIRE_BROWSER=1`` turns that into a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.served import prepare, serve
from tests.support.signin import link_in
from tests.support.smtp import MailSink
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.users import set_password
from workflow.web import create_app
from workflow.web.session import SESSION_COOKIE

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
PASSWORD = "a long enough password"


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
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver (nothing is downloaded)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, MailSink, dict[str, str]]]:
    """The served app on SQLite with two people (e-mail and password) and a mail sink."""
    url = f"sqlite:///{tmp_path / 'rubrong.db'}"
    clock = VirtualClock(parse_instant("2010-09-01T10:00"))
    tokens = prepare(url, clock, {"p50": "province:TH-50", "ops": "admin"})
    db = Database(url)
    with db.write() as conn:
        conn.exec_driver_sql("UPDATE users SET email = name || '@rubrong.example'")
    set_password(db, "ops", PASSWORD)
    db.dispose()
    sink = MailSink()
    sink.controller.start()
    try:
        with serve(create_app(url, clock, mailer=sink.mailer())) as base:
            yield base, sink, tokens
    finally:
        sink.controller.stop()


def _wait_path(driver: WebDriver, path: str) -> None:
    WebDriverWait(driver, 60).until(lambda d: d.current_url.split("?")[0].endswith(path))


def test_a_province_signs_in_with_a_mailed_link_in_chromium(
    browser: WebDriver, site: tuple[str, MailSink, dict[str, str]]
) -> None:
    base, sink, tokens = site
    browser.get(f"{base}/")
    _wait_path(browser, "/signin")
    browser.find_element(By.ID, "link-login").send_keys("p50@rubrong.example")
    browser.find_element(By.ID, "link-submit").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "signin-notice"))
    link = link_in(sink.wait_for("p50@rubrong.example"))
    browser.get(link)  # the link's page asks to confirm: opening it spends nothing
    assert "p50" in browser.find_element(By.ID, "link-account").text
    browser.find_element(By.ID, "link-confirm").click()
    _wait_path(browser, "/agreements/TH-50")
    assert "p50" in browser.find_element(By.ID, "whoami").text
    cookies = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    session = cookies[SESSION_COOKIE]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["value"] not in tokens.values() and "rubrong_token" not in cookies
    assert SESSION_COOKIE not in str(browser.execute_script("return document.cookie"))
    browser.get(link)  # a second use opens nothing
    assert browser.find_element(By.ID, "link-problem").is_displayed()
    browser.find_element(By.ID, "signout").click()
    _wait_path(browser, "/signin")
    browser.get(f"{base}/")
    _wait_path(browser, "/signin")  # signed out: back to the sign-in page


def test_a_person_signs_in_with_a_password_in_chromium(
    browser: WebDriver, site: tuple[str, MailSink, dict[str, str]]
) -> None:
    base, _sink, _tokens = site
    browser.get(f"{base}/signin")
    browser.find_element(By.ID, "login").send_keys("ops")
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "signin-submit").click()
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "signin-error"))
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "signin-submit").click()
    _wait_path(browser, "/queue")  # OPDC staff land on their queue
    assert "ops" in browser.find_element(By.ID, "whoami").text
