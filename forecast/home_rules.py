"""What a user may name for and under the home, checked before any path is built.

The home itself (``--home``, ``$FORECAST_HOME``, else the current directory),
how long a command waits for a lock (``$FORECAST_LOCK_TIMEOUT``), a name that
becomes one path component (a ticker, a model id: ``safe_name``), and the
daily job's ``outdir`` (never one of the home's own folders). ``workspace``
builds every path from what passes here.
"""

from __future__ import annotations

import os
from pathlib import Path

from forecast.errors import BadInputError

DEFAULT_LOCK_TIMEOUT_S = 120.0
LOCK_TIMEOUT_ENV = "FORECAST_LOCK_TIMEOUT"
HOME_ENV = "FORECAST_HOME"
OWN_FOLDERS = ("data", "models", "forecasts", "backtests", "charts", "quarantine")  # the home's own folders: no outdir in them
_FORBIDDEN_CHARS = ("/", "\\", "\x00")


def resolve_home(home: Path | str | None = None) -> Path:
    """Return the workspace folder: ``home``, else $FORECAST_HOME, else the current directory."""
    chosen = home or os.environ.get(HOME_ENV) or "."
    return Path(chosen).expanduser().resolve()


def lock_timeout_from_env(env: dict | None = None) -> float:
    """Return $FORECAST_LOCK_TIMEOUT in seconds (default 120), or raise BadInputError if it is not a number."""
    raw = (os.environ if env is None else env).get(LOCK_TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise BadInputError(f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise BadInputError(f"{LOCK_TIMEOUT_ENV}={raw!r} must be a finite number of seconds, 0 or more")
    return value


def safe_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it can be one path component under the home; raise BadInputError if not."""
    text = str(name)
    if (not text or text in (".", "..") or text.startswith(".") or any(c in text for c in _FORBIDDEN_CHARS)
            or len(text) > 200):
        raise BadInputError(f"not a valid {what}: {text[:80]!r}")
    return text


def outdir_problem(outdir: str, home: Path | None = None) -> str | None:
    """Why ``outdir`` cannot be the daily job's folder, or None: it must not be, or lie in, one of the home's own folders.

    Without ``home``, only what the text says is checked (``models``,
    ``./data/x``); with it, absolute paths and links are followed too.
    """
    problem = "{} is the home's own folder; the daily files would be read as its contents there (choose another, e.g. daily)"
    text = os.path.normpath(outdir)
    if not os.path.isabs(text):
        first = Path(text).parts[0] if Path(text).parts else ""
        if first in OWN_FOLDERS:
            return problem.format(f"{first}/")
    if home is None:
        return None
    root = Path(home)
    candidates = [Path(os.path.normpath(root / text))]
    try:
        candidates.append(candidates[0].resolve())
        owned = [(root / name, (root / name).resolve()) for name in OWN_FOLDERS]
    except (OSError, RuntimeError):
        return None  # a link that cannot be followed: creating the folder will say so
    for name, (plain, real) in zip(OWN_FOLDERS, owned):
        if any(c.is_relative_to(plain) or c.is_relative_to(real) for c in candidates):
            return problem.format(f"{name}/")
    return None
