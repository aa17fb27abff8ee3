"""Mailers against a real in-process SMTP server (aiosmtpd), a Maildir, and the MIME message."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import mailbox
import shutil
import ssl
import subprocess
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.mailers import (
    MaildirMailer,
    Mailer,
    RecordingMailer,
    SendResult,
    SendStatus,
    SmtpMailer,
    mailer_from_url,
)
from notifications.message import OutgoingMail, build_message
from tests.support.letters import DUE, SENT_AT, outgoing
from tests.support.smtp import RecordingHandler, free_port, smtp_server


def send(mailer: Mailer, mails: Sequence[OutgoingMail]) -> list[SendResult]:
    return asyncio.run(mailer.send_batch(mails))


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def check_message(message: EmailMessage, mail: OutgoingMail) -> None:
    """Headers decode back, bodies are Thai + English, the .ics carries the due date."""
    assert message["Subject"] == mail.rendered.subject
    assert "30 เมษายน 2554" in message["Subject"]
    assert message["Message-ID"] == mail.message_id
    assert message["Date"].datetime == SENT_AT
    assert message["X-Rubrong-Key"] == mail.key
    assert message["X-Rubrong-Template"] == f"mail/reminder@{mail.rendered.version}"
    assert message["From"].addresses[0].addr_spec == "noreply@opdc.go.th"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == mail.rendered.text
    assert "เรียน ผู้ว่าราชการจังหวัดเชียงใหม่" in html.get_content()
    attachments = list(message.iter_attachments())
    assert [part.get_filename() for part in attachments] == ["deadline.ics"]
    (ics_part,) = attachments
    assert ics_part.get_content_type() == "text/calendar"
    assert ics_part.get_param("method") == "PUBLISH"
    payload = ics_part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = icalendar.Calendar.from_ical(payload)
    assert str(calendar["METHOD"]) == "PUBLISH"
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == DUE
    assert event.decoded("DTEND") == DUE + dt.timedelta(days=1)
    assert str(event["SUMMARY"]).startswith("ครบกำหนด")
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == -dt.timedelta(days=1)


def test_batch_over_parallel_reused_connections() -> None:
    handler = RecordingHandler()
    mails = [outgoing(number) for number in range(12)]
    with smtp_server(handler) as port:
        results = send(SmtpMailer("127.0.0.1", port, connections=3), mails)
    assert results == [SendResult(mail.key, SendStatus.SENT) for mail in mails]
    assert len(handler.received) == 12
    assert 1 <= len({item.peer for item in handler.received}) <= 3
    by_key = {mail.key: mail for mail in mails}
    for item in handler.received:
        assert item.mail_from == "noreply@opdc.go.th"
        assert item.rcpt_tos == ["saraban@chiangmai.go.th"]
        message = parse(item.content)
        check_message(message, by_key[message["X-Rubrong-Key"]])


def test_451_is_temporary_and_550_is_permanent() -> None:
    mails = [outgoing(1), outgoing(2)]
    with smtp_server(RecordingHandler(data_reply="451 4.3.0 try again later")) as port:
        results = send(SmtpMailer("127.0.0.1", port, connections=1), mails)
    assert [r.status for r in results] == [SendStatus.TEMPORARY] * 2
    assert results[0].error is not None and results[0].error.startswith("451")

    handler = RecordingHandler(refuse_rcpt={"nobody@example.org": "550 5.1.1 no such user"})
    mixed = [outgoing(1), outgoing(2, to="nobody@example.org"), outgoing(3)]
    with smtp_server(handler) as port:
        results = send(SmtpMailer("127.0.0.1", port, connections=1), mixed)
    assert [r.status for r in results] == [SendStatus.SENT, SendStatus.PERMANENT, SendStatus.SENT]
    assert [r.key for r in results] == [m.key for m in mixed]
    assert results[1].error is not None and "550" in results[1].error
    assert len(handler.received) == 2  # the connection was reused after the refusal

    with smtp_server(RecordingHandler(data_reply="554 5.7.1 rejected")) as port:
        (result,) = send(SmtpMailer("127.0.0.1", port), [outgoing(4)])
    assert result.status is SendStatus.PERMANENT


def test_server_down_is_temporary_and_never_raises() -> None:
    mails = [outgoing(number) for number in range(5)]
    results = send(SmtpMailer("127.0.0.1", free_port(), connections=2, timeout=2), mails)
    assert [r.key for r in results] == [m.key for m in mails]
    assert all(r.status is SendStatus.TEMPORARY for r in results)
    assert all(r.error and "SMTP session with 127.0.0.1" in r.error for r in results)
    assert send(SmtpMailer("127.0.0.1", free_port()), []) == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"opdc@example.org",
        b"p:ss/w%rd",
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def test_starttls_with_login(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = RecordingHandler()
    options: dict[str, Any] = {
        "tls_context": server_tls(certificate),
        "require_starttls": True,
        "authenticator": authenticator,
        "auth_required": True,
    }
    with smtp_server(handler, **options) as port:
        verified = SmtpMailer(
            "127.0.0.1",
            port,
            mode="starttls",
            username="opdc@example.org",
            password="p:ss/w%rd",
            tls_context=ssl.create_default_context(cafile=str(certificate[0])),
        )
        assert send(verified, [outgoing(1)])[0].status is SendStatus.SENT
        monkeypatch.setenv("RUBRONG_SMTP_INSECURE", "1")
        url = f"smtp+starttls://opdc%40example.org:p%3Ass%2Fw%25rd@127.0.0.1:{port}"
        assert send(mailer_from_url(url, maildir=Path("unused")), [outgoing(2)])[0].status is (
            SendStatus.SENT
        )
        bad = f"smtp+starttls://opdc%40example.org:wrong@127.0.0.1:{port}"
        (refused,) = send(mailer_from_url(bad, maildir=Path("unused")), [outgoing(3)])
    assert refused.status is SendStatus.TEMPORARY
    assert refused.error and "535" in refused.error
    assert [item.login for item in handler.received] == [b"opdc@example.org"] * 2
    check_message(parse(handler.received[1].content), outgoing(2))


def test_implicit_tls(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    handler = RecordingHandler()
    with smtp_server(handler, ssl_context=server_tls(certificate)) as port:
        url = f"smtps://127.0.0.1:{port}"
        monkeypatch.delenv("RUBRONG_SMTP_INSECURE", raising=False)
        (untrusted,) = send(mailer_from_url(url, maildir=Path("unused")), [outgoing(1)])
        monkeypatch.setenv("RUBRONG_SMTP_INSECURE", "1")
        (trusted,) = send(mailer_from_url(url, maildir=Path("unused")), [outgoing(2)])
    assert untrusted.status is SendStatus.TEMPORARY and untrusted.error
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error or "certificate" in untrusted.error
    assert trusted.status is SendStatus.SENT
    assert len(handler.received) == 1


# --- Maildir, recording, URLs, the message ----------------------------------------------------


def test_maildir_mailer_writes_messages(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    mails = [outgoing(1), outgoing(2)]
    results = send(MaildirMailer(folder), mails)
    assert [r.status for r in results] == [SendStatus.SENT] * 2
    box = mailbox.Maildir(folder, create=False)
    stored = [parse(box.get_bytes(key)) for key in box.iterkeys()]
    stored.sort(key=lambda message: str(message["X-Rubrong-Key"]))
    assert len(stored) == 2
    for message, mail in zip(stored, mails, strict=True):
        check_message(message, mail)
    # The file holds exactly the bytes an SMTP server would get (CRLF), as the result says.
    files = sorted(box.get_bytes(key) for key in box.iterkeys())
    assert files == sorted(r.data for r in results if r.data is not None)
    assert all(b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"") for data in files)


def test_recording_mailer_records_and_fails_on_demand() -> None:
    mailer = RecordingMailer()
    assert [r.status for r in send(mailer, [outgoing(1)])] == [SendStatus.SENT]
    assert (
        mailer.sent == [outgoing(1)] and mailer.messages[0]["Message-ID"] == outgoing(1).message_id
    )
    mailer.fail_with = SendStatus.TEMPORARY
    mailer.fail_keys = {outgoing(3).key}
    results = send(mailer, [outgoing(2), outgoing(3)])
    assert [r.status for r in results] == [SendStatus.SENT, SendStatus.TEMPORARY]
    assert results[1].error == "451 simulated failure"
    assert len(mailer.sent) == 2 and mailer.batches == 2


def test_mailer_from_url() -> None:
    maildir = Path("mail")
    assert isinstance(mailer_from_url(None, maildir=maildir), MaildirMailer)
    assert isinstance(mailer_from_url("", maildir=maildir), MaildirMailer)
    plain = mailer_from_url("smtp://localhost:2525", maildir=maildir, connections=8)
    assert isinstance(plain, SmtpMailer)
    assert (plain.host, plain.port, plain.mode, plain.username, plain.connections) == (
        "localhost",
        2525,
        "plain",
        None,
        8,
    )
    tls = mailer_from_url("smtps://u%40x:p%23w@mail.example.org", maildir=maildir)
    assert isinstance(tls, SmtpMailer)
    assert (tls.port, tls.mode, tls.username, tls.password) == (465, "tls", "u@x", "p#w")
    starttls = mailer_from_url("smtp+starttls://u:p@mail.example.org:587", maildir=maildir)
    assert isinstance(starttls, SmtpMailer) and starttls.mode == "starttls"
    for bad, message in [
        ("http://mail.example.org", "scheme"),
        ("smtp://", "no host"),
        ("smtp://mail.example.org:port", "bad port"),
        ("smtp://mail.example.org:99999", "bad port"),
        ("smtp://mail.example.org:25/inbox", "path"),
        ("mail.example.org:25", "scheme"),
    ]:
        with pytest.raises(ValueError, match=message):
            mailer_from_url(bad, maildir=maildir)


def test_build_message_structure() -> None:
    mail = outgoing(7)
    message = build_message(mail)
    assert message.get_content_type() == "multipart/mixed"
    raw = message.as_bytes()
    assert raw.isascii()
    assert f"Message-ID: {mail.message_id}\r\n".encode() in raw
    check_message(parse(raw), mail)
    plain = build_message(outgoing(8, ics=False))
    assert plain.get_content_type() == "multipart/alternative"
    assert not list(plain.iter_attachments())
    with pytest.raises(ValueError, match="aware"):
        build_message(
            OutgoingMail("k", "a@b", "c@d", "<m@rubrong>", dt.datetime(2011, 1, 1), mail.rendered)
        )
    with pytest.raises(ValueError, match="address"):
        build_message(OutgoingMail("k", "a@b", "nobody", "<m@rubrong>", SENT_AT, mail.rendered))
