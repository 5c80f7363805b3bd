"""Outgoing mail: over SMTP when ``VOUCH_MAIL__HOST`` is set, else into the log and the data
dir's ``outbox/`` (one ``.eml`` file per message), so that an install with no mail server can
still follow its links. Sending blocks: callers run it after the commit, in the request's
worker thread (page and API routes that send are sync), never on the event loop."""

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from core.clock import utcnow
from core.config import MailSettings

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]")  # in outbox file names


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    """Sends a ``Mail`` through the configured SMTP server, or writes it to the outbox."""

    def __init__(self, settings: MailSettings, outbox: Path) -> None:
        self.settings = settings
        self.outbox = outbox

    @property
    def smtp(self) -> bool:
        """Whether mail really leaves (an SMTP host is configured)."""
        return bool(self.settings.host)

    def message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.from_
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain="vouch")
        message.set_content(mail.body)
        return message

    def send(self, mail: Mail) -> bool:
        """Send ``mail``; False (and a logged warning) when the server refused it or was out of
        reach: the caller's work is committed already, and the user can ask again."""
        try:
            message = self.message(mail)
            if self.smtp:
                self._to_smtp(message)
            else:
                self._to_outbox(message)
        except (OSError, ValueError, smtplib.SMTPException) as exc:
            # ValueError: an address the message or the server cannot carry (UnicodeError).
            log.warning("mail to %s not sent: %s", mail.to, exc)
            return False
        return True

    def _to_smtp(self, message: EmailMessage) -> None:
        settings = self.settings
        assert settings.host is not None
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password.get_secret_value())
            smtp.send_message(message)

    def _to_outbox(self, message: EmailMessage) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        path = self.outbox / f"{stamp}-{_SAFE.sub('_', message['To'])}.eml"
        path.write_bytes(message.as_bytes())
        log.warning(
            "no SMTP host configured (VOUCH_MAIL__HOST): mail to %s written to %s\n%s",
            message["To"],
            path,
            message.get_content(),
        )
