"""Signing in to the dashboard through its forms, as the session tests do: the sign-in form's
CSRF token (``csrf_of``), a password sign-in (``password_signin``), asking for a mailed link
(``ask_link``), reading it from the letter (``link_in``) and using it (``use_link``: open the
page it names, then confirm). Signing in with an API token is in
:mod:`tests.support.webforms`.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx

from tests.support.smtp import text_of

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/signin/link/[A-Za-z0-9_%-]+")


def link_in(message: EmailMessage) -> str:
    """The one sign-in link a letter carries."""
    links = set(LINK.findall(text_of(message)))
    assert len(links) == 1, links
    return str(links.pop())


def csrf_of(client: httpx.Client) -> str:
    """Open the sign-in page with ``client`` and read its form's CSRF token."""
    page = client.get("/signin")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None, "the sign-in form carries no CSRF token"
    return found.group(1)


def password_signin(client: httpx.Client, login: str, password: str) -> httpx.Response:
    """Sign in through the form (CSRF included); the answer, redirects not followed."""
    form = {"csrf_token": csrf_of(client), "login": login, "password": password}
    return client.post("/signin", data=form, follow_redirects=False)


def ask_link(client: httpx.Client, login: str) -> httpx.Response:
    """Ask for a sign-in link through the form."""
    form = {"csrf_token": csrf_of(client), "login": login}
    return client.post("/signin/link", data=form, follow_redirects=False)


def use_link(client: httpx.Client, link: str) -> httpx.Response:
    """Open a mailed link (its page asks to confirm, spending nothing) and confirm it; the
    confirming POST's answer, redirects not followed."""
    page = client.get(link, follow_redirects=False)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None and 'id="link-confirm"' in page.text, page.text
    return client.post(link, data={"csrf_token": found.group(1)}, follow_redirects=False)
