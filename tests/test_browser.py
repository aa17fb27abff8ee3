"""The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver.

A province signs in (the API-token form of the sign-in page) and lands on its own agreement:
its next deliverables with Buddhist-Era dates and Thai titles, its mail only, the state diagram
with its state highlighted, its actions. An OPDC admin lands on the queue and filters it, pages
through the outbox and reads the matrix. Every page is checked at 1366 px and at a phone's
390 px for horizontal scrolling. Screenshots go to ``RUBRONG_SCREENSHOTS`` when set (the lead
puts them in docs/), else to the test's tmp dir. ``.ci/browser.sh`` installs ``chromium`` and
``chromium-driver``; without them the test skips saying why (``RUBRONG_REQUIRE_BROWSER=1``
turns that into a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.pages_world import SPRING, build
from tests.support.served import serve
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
    "--hide-scrollbars",
    "--window-size=1366,900",
)
WAIT = 30  # seconds: generous, the machine is shared


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


@dataclass
class Site:
    """The served app over a year in progress (20 Apr 2011) and its users' tokens."""

    base: str
    tokens: dict[str, str]
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """cycle_2554 with agreements at every queue step, ticked to 20 Apr 2011, served."""
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'rubrong.db'}"
    clock, tokens = build(url, SPRING)
    shots = Path(os.environ.get("RUBRONG_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with serve(create_app(url, clock)) as base:
        yield Site(base, tokens, shots)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium through Debian's chromedriver (nothing is downloaded)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def fresh(browser: WebDriver) -> WebDriver:
    """The browser with no cookies (nobody signed in) at a desktop width."""
    browser.delete_all_cookies()
    browser.set_window_size(1366, 900)
    return browser


def _loaded(driver: WebDriver) -> None:
    WebDriverWait(driver, WAIT, ignored_exceptions=[WebDriverException]).until(
        lambda d: d.execute_script(
            "return window.rubrongOldPage === undefined && document.readyState === 'complete'"
        )
    )


def _click(driver: WebDriver, by: str, value: str) -> None:
    """Click something that loads a new page, and wait until the new page has loaded."""
    driver.execute_script("window.rubrongOldPage = true")
    driver.find_element(by, value).click()
    _loaded(driver)


def _sign_in(driver: WebDriver, site: Site, who: str) -> None:
    """Sign in with the API-token form of the sign-in page."""
    driver.get(f"{site.base}/")
    assert "/signin" in driver.current_url  # nobody signed in yet
    driver.find_element(By.ID, "token-toggle").click()
    driver.find_element(By.ID, "token").send_keys(site.tokens[who])
    _click(driver, By.ID, "token-submit")


def _attr(driver: WebDriver, css: str, name: str) -> list[str]:
    return [str(e.get_attribute(name)) for e in driver.find_elements(By.CSS_SELECTOR, css)]


def _shot(driver: WebDriver, site: Site, name: str) -> None:
    path = site.shots / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000


def _no_sideways_scroll(driver: WebDriver, where: str) -> None:
    width = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], f"{where} scrolls sideways: {width[0]}px wide in {width[1]}px"


def test_a_province_lands_on_its_own_agreement(fresh: WebDriver, site: Site) -> None:
    _sign_in(fresh, site, "chiang")
    assert fresh.current_url == f"{site.base}/agreements/TH-50"
    assert "เชียงใหม่" in fresh.find_element(By.ID, "agreement-title").text
    sar6 = fresh.find_element(By.CSS_SELECTOR, "#due-soon li[data-milestone='sar6']")
    assert "30 เม.ย. 2554" in sar6.text
    assert "ส่งรายงานการประเมินผลตนเอง (SAR) รอบ 6 เดือน" in sar6.text
    assert sar6.get_attribute("data-days-left") == "7"
    late = fresh.find_element(By.CSS_SELECTOR, "#overdue-list li[data-milestone='kpi_template']")
    assert "31 ม.ค. 2554" in late.text and "KPI Template" in late.text
    mail = _attr(fresh, "#mail tbody tr", "data-agreement")
    assert mail and set(mail) == {"TH-50"}
    current = _attr(fresh, "#agreement-diagram svg g.current", "data-state")
    assert current == ["signed"]
    fill = fresh.execute_script(
        "return getComputedStyle(document.querySelector('#agreement-diagram g.current rect')).fill"
    )
    assert fill == "rgb(40, 53, 147)"
    actions = _attr(fresh, "#actions [data-event]", "data-event")
    assert "submit_sar6" in actions and "sign" not in actions
    _shot(fresh, site, "province-agreement-1366")

    _click(fresh, By.ID, "nav-outbox")
    letters = _attr(fresh, "#outbox tbody tr", "data-agreement")
    assert letters and set(letters) == {"TH-50"}  # its own mail only

    fresh.get(f"{site.base}/agreements/TH-51")
    assert not fresh.find_elements(By.ID, "mail")  # another province's letters: not shown
    fresh.get(f"{site.base}/agreements/TH-50?lang=en")
    sar6 = fresh.find_element(By.CSS_SELECTOR, "#due-soon li[data-milestone='sar6']")
    assert "30 Apr 2011" in sar6.text
    assert fresh.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    fresh.get(f"{site.base}/agreements/TH-50?lang=th")


def test_an_opdc_admin_works_from_the_queue(fresh: WebDriver, site: Site) -> None:
    _sign_in(fresh, site, "opdc")
    assert fresh.current_url == f"{site.base}/queue"
    counts = dict(
        zip(
            _attr(fresh, "#steps a[data-count]", "data-step"),
            _attr(fresh, "#steps a[data-count]", "data-count"),
            strict=True,
        )
    )
    assert counts["negotiation"] == "1" and counts["kpi_audit"] == "1"
    _shot(fresh, site, "queue-1366")
    _click(fresh, By.CSS_SELECTOR, "#steps a[data-step='negotiation']")
    assert _attr(fresh, "#queue tbody tr", "data-agreement") == ["TH-51"]
    _click(fresh, By.CSS_SELECTOR, "#steps a[data-step='']")
    Select(fresh.find_element(By.ID, "filter-group")).select_by_value("north-upper-1")
    Select(fresh.find_element(By.ID, "filter-kind")).select_by_value("group")
    _click(fresh, By.ID, "filter-submit")
    assert _attr(fresh, "#queue tbody tr", "data-agreement") == ["north-upper-1"]
    assert _attr(fresh, "#queue tbody tr", "data-step") == ["signing"]
    fresh.find_element(By.ID, "filter-q").clear()
    _click(fresh, By.ID, "filter-clear")
    fresh.find_element(By.ID, "filter-q").send_keys("ลำปาง")
    _click(fresh, By.ID, "filter-submit")
    assert _attr(fresh, "#queue tbody tr", "data-agreement") == ["TH-52"]

    _click(fresh, By.CSS_SELECTOR, "#queue tbody tr a")
    assert fresh.current_url == f"{site.base}/agreements/TH-52"
    assert _attr(fresh, "#agreement-diagram svg g.current", "data-state") == ["proposed"]
    assert "agree" in _attr(fresh, "#actions [data-event]", "data-event")


def test_the_outbox_pages_and_filters(fresh: WebDriver, site: Site) -> None:
    _sign_in(fresh, site, "opdc")
    fresh.get(f"{site.base}/outbox")
    first = _attr(fresh, "#outbox tbody tr", "data-key")
    assert len(first) == 50
    pages = int(fresh.find_element(By.ID, "pager").get_attribute("data-pages") or 0)
    assert pages > 2
    _shot(fresh, site, "outbox-1366")
    _click(fresh, By.CSS_SELECTOR, "#pager a[rel='next']")
    second = _attr(fresh, "#outbox tbody tr", "data-key")
    assert len(second) == 50 and not set(first) & set(second)
    assert fresh.find_element(By.ID, "pager").get_attribute("data-page") == "2"
    Select(fresh.find_element(By.ID, "outbox-kind")).select_by_value("overdue")
    _click(fresh, By.ID, "outbox-submit")
    assert fresh.find_element(By.ID, "pager").get_attribute("data-page") == "1"
    kinds = {
        row.text for row in fresh.find_elements(By.CSS_SELECTOR, "#outbox tbody tr td:nth-child(3)")
    }
    assert kinds and all(text.startswith("แจ้งเลยกำหนด") for text in kinds)
    href = fresh.find_element(By.ID, "downloads-csv").get_attribute("href") or ""
    assert "kind=overdue" in href and href.endswith("download=csv")


def test_the_diagram_is_inline_svg(fresh: WebDriver, site: Site) -> None:
    _sign_in(fresh, site, "chiang")
    fresh.get(f"{site.base}/diagram?state=audited")
    states = _attr(fresh, "#diagram svg g.state", "data-state")
    assert len(states) == 13 and states[0] == "drafted"
    assert _attr(fresh, "#diagram svg g.current", "data-state") == ["audited"]
    assert not fresh.find_elements(By.TAG_NAME, "script")
    _shot(fresh, site, "diagram-1366")


PAGES = (
    ("opdc", "/queue", "queue"),
    ("opdc", "/matrix", "matrix"),
    ("opdc", "/outbox", "outbox"),
    ("opdc", "/scores", "scores"),
    ("opdc", "/diagram", "diagram"),
    ("opdc", "/agreements/TH-58", "agreement-opdc"),
    ("chiang", "/agreements/TH-50", "agreement-province"),
)


@pytest.mark.parametrize("width", [1366, 390])
def test_no_page_scrolls_sideways(fresh: WebDriver, site: Site, width: int) -> None:
    signed_in = None
    for who, path, name in PAGES:
        if who != signed_in:
            fresh.delete_all_cookies()
            fresh.set_window_size(1366, 900)
            _sign_in(fresh, site, who)
            signed_in = who
        fresh.set_window_size(width, 844 if width < 500 else 900)
        fresh.get(f"{site.base}{path}")
        _loaded(fresh)
        assert fresh.find_elements(By.TAG_NAME, "main"), path
        _no_sideways_scroll(fresh, f"{path} at {width}px")
        _shot(fresh, site, f"{name}-{width}")
    _click(fresh, By.ID, "signout")
    fresh.get(f"{site.base}/queue")
    assert "/signin" in fresh.current_url
