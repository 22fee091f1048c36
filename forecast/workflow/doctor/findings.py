"""What ``doctor`` reports: a ``Finding`` per problem, whether any is left, the exit code; and the helpers every check uses."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from forecast.data.tickers import parse_ticker
from forecast.errors import CorruptFileError, ExitCode, ForecastError

_PARENS = re.compile(r"\(([^()]*)\)")
HOME, FOLDER, LOCK, PIN = "home", "folder", "lock", "pin"  # kinds of finding (Finding.kind lists them all)


@dataclass(frozen=True)
class Finding:
    """One problem: what it is, where it is, what makes it again, and where ``repair`` put it."""

    kind: str  # home | folder | lock | store | cache | model | pointer | pin | forecast | adaptive | backtest | debris
    path: Path
    problem: str
    advice: str
    moved_to: Path | None = None  # where repair put it; ``path`` itself when repair removed it (an empty lock folder)

    def to_dict(self) -> dict[str, str | None]:
        return {key: None if value is None else str(value) for key, value in asdict(self).items()}

    def line(self, root: Path) -> str:
        moved = ("" if self.moved_to is None else "; removed" if self.moved_to == self.path
                 else f"; moved to {_rel(self.moved_to, root)}")
        where = str(self.path) if self.kind == HOME else _rel(self.path, root)
        return f"{self.kind}: {where}: {self.problem}{moved}; {self.advice}"


def healthy(findings: list[Finding]) -> bool:
    """True when nothing is left to fix: no findings, or every one was moved to quarantine (or removed)."""
    return all(f.moved_to is not None for f in findings)


def exit_code(findings: list[Finding]) -> ExitCode:
    """0 when healthy; 4 when the home does not exist (nothing to check: README's "no such file"); else 3."""
    if healthy(findings):
        return ExitCode.OK
    if any(f.kind == HOME and "does not exist" in f.problem for f in findings):
        return ExitCode.NOT_FOUND
    return ExitCode.BAD_INPUT


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _why(exc: ForecastError) -> str:
    """``unreadable (ArrowInvalid)`` from a CorruptFileError's message; other errors as they read."""
    head, corrupt = str(exc).split("; ")[0], isinstance(exc, CorruptFileError)
    reasons = _PARENS.findall(head) if corrupt else []  # the last one: the home's path may hold parentheses too
    return (f"unreadable ({reasons[-1]})" if reasons else "unreadable") if corrupt else head


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _entries(folder: Path) -> list[Path]:
    """The folder's entries, dot-names (locks, leftovers) aside; none if it does not exist."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def _ticker(name: str) -> bool:
    """Whether ``name`` is a ticker in normal form (what the store and the registry use as names)."""
    try:
        return str(parse_ticker(name)) == name
    except ForecastError:
        return False
