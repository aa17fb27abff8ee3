"""People sign in: a password or a one-time mailed link starts a server-side session.

``GET /signin`` the form (name or e-mail + password; "send me a sign-in link"; and, for machines
and tests, "sign in with an API token"), ``POST /signin``, ``POST /signin/link`` (the answer is
the same whether or not the address is known), ``GET /signin/link/<token>``, ``POST /signout``,
``POST /signout/everywhere``. Every form is CSRF-protected (before sign-in by a double-submit
cookie). After 5 failed sign-ins for one account or 20 from one client address within 15
minutes, sign-in answers 429 until the window has passed; failures are counted from the
security log, so the limit holds across processes sharing the database. Every sign-in, failure,
link request, link use and sign-out is written to the security log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask

from workflow.resources import template_dir
from workflow.store.security import FAILURE, account_marker, recent_failures, record_event
from workflow.store.tokens import User, authenticate
from workflow.store.users import MAX_PASSWORD, check_password, end_sessions, find_accounts
from workflow.web.auth import Services, services
from workflow.web.i18n import WORDS, Words, pick_language
from workflow.web.session import (
    CSRF_FIELD,
    check_csrf,
    clear_session_cookie,
    client_address,
    current_session,
    end_session,
    install_template_globals,
    remember_presession,
    session_user,
    set_session_cookie,
    start_session,
)
from workflow.web.signin_mail import (
    LinkProblem,
    consume_link,
    link_mail,
    make_link,
    peek_link,
    public_base,
    send_link,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(template_dir() / "web"))
install_template_globals(templates.env)
WINDOW = 15 * 60
ACCOUNT_LIMIT = 5
CLIENT_LIMIT = 20
MAX_FORM = 16_384
LANG_COOKIE = "rubrong_lang"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SIGNIN_WORDS: dict[str, tuple[str, str]] = {
    "login": ("ชื่อผู้ใช้หรืออีเมล", "User name or e-mail"),
    "password": ("รหัสผ่าน", "Password"),
    "bad_password": (
        "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง",
        "The user name or password is wrong",
    ),
    "too_many": (
        "พยายามเข้าสู่ระบบไม่สำเร็จหลายครั้งเกินไป กรุณารอ 15 นาทีแล้วลองใหม่",
        "Too many failed sign-ins: wait 15 minutes and try again",
    ),
    "send_link": ("ส่งลิงก์เข้าสู่ระบบทางอีเมล", "Send me a sign-in link"),
    "link_help": (
        "ใส่อีเมลหรือชื่อผู้ใช้ ระบบจะส่งลิงก์ที่ใช้ได้ครั้งเดียวภายใน 15 นาที",
        "Give your e-mail or user name: we mail a link that works once, within 15 minutes",
    ),
    "link_sent": (
        "หากมีบัญชีที่ใช้อีเมลนี้ ระบบได้ส่งลิงก์เข้าสู่ระบบไปแล้ว กรุณาตรวจสอบอีเมลของท่าน",
        "If an account has this address, a sign-in link is on its way: check your mail",
    ),
    "with_token": ("เข้าสู่ระบบด้วยโทเค็น API", "Sign in with an API token"),
    "link_expired": (
        "ลิงก์นี้หมดอายุแล้ว กรุณาขอลิงก์ใหม่",
        "This link has expired: ask for a new one",
    ),
    "link_confirm": (
        "เข้าสู่ระบบด้วยลิงก์จากอีเมล: กดปุ่มด้านล่างเพื่อเข้าสู่ระบบในชื่อ",
        "Sign in with the link from your e-mail: press the button below to sign in as",
    ),
    "link_confirm_button": ("เข้าสู่ระบบ", "Sign in"),
    "link_used": (
        "ลิงก์นี้ถูกใช้ไปแล้ว ลิงก์ใช้ได้ครั้งเดียว กรุณาขอลิงก์ใหม่",
        "This link was already used (it works once): ask for a new one",
    ),
    "link_unknown": (
        "ลิงก์นี้ไม่ถูกต้อง กรุณาขอลิงก์ใหม่",
        "This link is not valid: ask for a new one",
    ),
    "signed_out": ("ออกจากระบบแล้ว", "You are signed out"),
    "signed_out_everywhere": (
        "ออกจากระบบในทุกอุปกรณ์แล้ว",
        "You are signed out on every device",
    ),
    "sign_out_everywhere": ("ออกจากระบบทุกอุปกรณ์", "Sign out everywhere"),
    "already_in": ("ท่านเข้าสู่ระบบอยู่แล้วในชื่อ", "You are already signed in as"),
    "or": ("หรือ", "or"),
}
_MESSAGES = {"expired": "link_expired", "used": "link_used", "unknown": "link_unknown"}


class SigninWords(Words):
    """The dashboard's words plus those of the sign-in pages."""

    def __call__(self, key: str) -> str:
        """A word of the interface."""
        pair = SIGNIN_WORDS.get(key) or WORDS.get(key)
        return key if pair is None else pair[self._index]


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in (anything else → ``/``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(char) < 0x21 for char in value) or value.startswith("/signin"):
        return "/"
    return value[:1000]


def signin_url(request: Request) -> str:
    """``/signin?next=<this page>``: where a page sends a browser that is not signed in."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/signin" if here == "/" else f"/signin?{urlencode({'next': here})}"


def _render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    lang = pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))
    switch = dict(request.query_params)
    switch["lang"] = "en" if lang == "th" else "th"
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": SigninWords(lang),
            "lang": lang,
            "user": session_user(request),
            "switch_url": f"{request.url.path}?{urlencode(switch)}",
            **context,
        },
        status_code=status,
        headers=HEADERS,
    )
    remember_presession(request, response)
    return response


def _page(request: Request, status: int = 200, **context: Any) -> Response:
    params = request.query_params
    values = {"error": None, "notice": None, "login": "", "next": safe_next(params.get("next"))}
    return _render(request, "signin.html.j2", status, **{**values, **context})


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    return {key: values[0] for key, values in parsed.items() if values}


def _log(request: Request, actor: str, action: str, outcome: str, reason: str) -> None:
    svc = services(request)
    record_event(
        svc.db,
        svc.clock,
        actor=actor,
        action=action,
        outcome=outcome,
        reason=reason,
        address=client_address(request),
    )


def _who(user: User) -> str:
    return f"(user {user.name} {account_marker(user.id)}"


def _limited(svc: Services, accounts: list[User], address: str) -> bool:
    since = svc.clock.now() - WINDOW
    if recent_failures(svc.db, since, address=address) >= CLIENT_LIMIT:
        return True
    return any(
        recent_failures(svc.db, since, account_id=account.id) >= ACCOUNT_LIMIT
        for account in accounts
    )


def _signed_in(request: Request, user: User, target: str) -> Response:
    session_id, _csrf = start_session(services(request), user, request)
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    set_session_cookie(response, session_id, request)
    return response


@router.get("/signin")
def signin_page(request: Request) -> Response:
    """The sign-in form (password, mailed link, or API token)."""
    notice = request.query_params.get("notice")
    return _page(request, notice=notice if notice in ("signed_out", "link_sent") else None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check a password (or an API token); on success start a session and go on."""
    form = await _form(request)
    await run_in_threadpool(check_csrf, request, form.get(CSRF_FIELD))
    return await run_in_threadpool(_signin, request, form)


def _signin(request: Request, form: dict[str, str]) -> Response:
    svc = services(request)
    target = safe_next(form.get("next"))
    address = client_address(request)
    token = form.get("token", "").strip()
    login = form.get("login", "").strip()[:320]
    accounts = [] if token else find_accounts_read(svc, login)
    if _limited(svc, accounts, address):
        marker = " ".join(_who(a) for a in accounts) or f"(login {login[:64]!r})"
        _log(request, "anonymous", f"POST /signin {marker}", "rate-limited", "too many failures")
        return _page(request, 429, error="too_many", login=login, next=target)
    if token:
        user = authenticate(svc.db, token, svc.clock)
        how = "API token"
    else:
        user = check_password(svc.db, accounts, form.get("password", "")[: MAX_PASSWORD + 1])
        how = "password"
    if user is None:
        marker = " ".join(_who(a) for a in accounts) or f"(login {login[:64]!r})"
        reason = "unknown or revoked token" if token else "unknown account or wrong password"
        _log(request, "anonymous", f"POST /signin {how} {marker}", FAILURE, reason)
        error = "bad_token" if token else "bad_password"
        return _page(request, 401, error=error, login=login, next=target)
    _log(request, str(user.role), f"POST /signin {how} {_who(user)}", "ok", "signed in")
    return _signed_in(request, user, target)


def find_accounts_read(svc: Services, login: str) -> list[User]:
    """The active accounts a sign-in form's ``login`` names."""
    with svc.db.read() as conn:
        return find_accounts(conn, login)


@router.post("/signin/link")
async def request_link(request: Request) -> Response:
    """Mail a one-time sign-in link to the account(s) of that address or name. The answer is
    the same whether or not such an account exists."""
    form = await _form(request)
    await run_in_threadpool(check_csrf, request, form.get(CSRF_FIELD))
    svc = services(request)
    login = form.get("login", "").strip()[:320]
    target = safe_next(form.get("next"))
    accounts = await run_in_threadpool(find_accounts_read, svc, login)
    if await run_in_threadpool(_limited, svc, [], client_address(request)):
        await run_in_threadpool(
            _log, request, "anonymous", "POST /signin/link", "rate-limited", "too many failures"
        )
        return _page(request, 429, error="too_many", login=login, next=target)
    mails = []
    now = svc.wall.now()
    base = public_base(str(request.base_url))
    for user in accounts:
        if user.email is None:
            outcome, reason = "no-address", "the account has no e-mail address"
        else:
            token = await run_in_threadpool(make_link, svc.db, user, now)
            if token is None:
                outcome, reason = "throttled", "too many links asked for this account"
            else:
                link = f"{base}/signin/link/{quote(token)}"
                mails.append((user, await run_in_threadpool(link_mail, svc.db, user, link, now)))
                outcome, reason = "sent", f"link mailed to {user.email}"
        await run_in_threadpool(
            _log, request, str(user.role), f"POST /signin/link {_who(user)}", outcome, reason
        )
    if not accounts:
        await run_in_threadpool(
            _log,
            request,
            "anonymous",
            f"POST /signin/link (login {login[:64]!r})",
            "no-account",
            "no active account has this name or address",
        )
    response = RedirectResponse(
        f"/signin?{urlencode({'notice': 'link_sent', 'next': target})}", status_code=303
    )
    if mails:  # after the answer, so that its timing says nothing about the address
        response.background = BackgroundTask(_deliver, request, mails)
    return response


async def _deliver(request: Request, mails: list[tuple[User, Any]]) -> None:
    svc = services(request)
    for user, mail in mails:
        problem = "no mailer is configured" if svc.mailer is None else None
        if svc.mailer is not None:
            problem = await send_link(svc.mailer, mail)
        if problem is not None:
            await run_in_threadpool(
                _log, request, str(user.role), f"mail sign-in link {_who(user)}", "failed", problem
            )


@router.get("/signin/link/{token}")
def open_link(request: Request, token: str) -> Response:
    """A mailed link, opened: it asks to confirm and spends nothing (mail scanners and link
    previews fetch URLs; a one-time link spent by them would fail its owner). Expired, used or
    unknown → a clear page."""
    svc = services(request)
    found = peek_link(svc.db, token[:200], svc.wall.now())
    if isinstance(found, LinkProblem):
        return _link_problem(request, "GET", found)
    target = safe_next(request.query_params.get("next"))
    return _render(request, "signin_link_confirm.html.j2", account=found, next=target)


@router.post("/signin/link/{token}")
async def use_link(request: Request, token: str) -> Response:
    """Confirming a mailed link: it opens a session once."""
    form = await _form(request)
    await run_in_threadpool(check_csrf, request, form.get(CSRF_FIELD))
    return await run_in_threadpool(_use_link, request, token, safe_next(form.get("next")))


def _use_link(request: Request, token: str, target: str) -> Response:
    svc = services(request)
    found = consume_link(svc.db, token[:200], svc.wall.now())
    if isinstance(found, LinkProblem):
        return _link_problem(request, "POST", found)
    _log(request, str(found.role), f"POST /signin/link {_who(found)}", "ok", "signed in by link")
    return _signed_in(request, found, target)


def _link_problem(request: Request, method: str, problem: LinkProblem) -> Response:
    _log(request, "anonymous", f"{method} /signin/link", "refused", f"link {problem.value}")
    status = 400 if problem is LinkProblem.UNKNOWN else 410
    return _render(request, "signin_link_problem.html.j2", status, message=_MESSAGES[problem.value])


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End this browser's session."""
    form = await _form(request)
    response = RedirectResponse("/signin?notice=signed_out", status_code=303)
    clear_session_cookie(response)
    if await run_in_threadpool(current_session, request) is None:
        return response  # nothing to end (and no session token to check)
    await run_in_threadpool(check_csrf, request, form.get(CSRF_FIELD))
    ended = await run_in_threadpool(end_session, services(request), request)
    if ended is not None:
        user = ended.user
        await run_in_threadpool(
            _log, request, str(user.role), f"POST /signout {_who(user)}", "ok", "signed out"
        )
    return response


@router.post("/signout/everywhere")
async def signout_everywhere(request: Request) -> Response:
    """End every session of the signed-in account (every browser, every device)."""
    form = await _form(request)
    response = RedirectResponse("/signin?notice=signed_out", status_code=303)
    clear_session_cookie(response)
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return response
    await run_in_threadpool(check_csrf, request, form.get(CSRF_FIELD))
    count = await run_in_threadpool(_end_all, services(request), session.user.id)
    user = session.user
    await run_in_threadpool(
        _log,
        request,
        str(user.role),
        f"POST /signout/everywhere {_who(user)}",
        "ok",
        f"{count} session(s) ended",
    )
    return response


def _end_all(svc: Services, user_id: int) -> int:
    with svc.db.write() as conn:
        return end_sessions(conn, user_id, svc.wall.now())
