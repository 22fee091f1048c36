"""Secrets never leave the process: every message that goes out passes through ``redact``.

The tushare token is registered here once, where it is read (config), and
then masked in CLI errors, ``--json`` output, log records and summary files,
whatever produced the text: our code, the client library, or the server's
own error message.
"""

from __future__ import annotations

import logging

MASK = "****"
_MIN_SECRET_LENGTH = 4  # shorter strings would mask ordinary words
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that ``redact`` masks it from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``****``."""
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: a secret may contain another
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: object) -> object:
    """Return a JSON-like value with every string in it redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def mask(value: str | None) -> str | None:
    """Return a display form of a secret: ``****`` plus its last two characters when it is long."""
    if not value:
        return value
    return MASK + value[-2:] if len(value) > 8 else MASK


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's final message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg, record.args = redact(record.getMessage()), None
        return True
