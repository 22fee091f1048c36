"""Heavy and edge libraries stay in the one place each belongs.

The layer order itself is an import-linter contract (pyproject.toml, run by
``make check``); this test checks the third-party side with the standard
library alone, so it runs in every ``make test`` as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "forecast"

# third-party package -> the modules (or package folders) allowed to import it
CONFINED = {
    "tensorflow": {"models/network.py", "models/pooled/network.py"},
    "keras": {"models/network.py", "models/pooled/network.py"},
    "tushare": {"data/sources/tushare_pro.py"},
    "typer": {"cli/"},
    "click": {"cli/"},
    "rich": {"progress.py", "cli/"},
    "ray": {"workflow/executors.py"},
    "lightgbm": {"models/pooled/boosting.py"},
    "arch": {"models/garch.py"},
    "statsforecast": {"models/ets.py"},
    "jinja2": {"outputs/report/"},
    "plotly": {"outputs/report/"},
}


def imported_packages(path: Path) -> set[str]:
    """Return the top-level names of every import in ``path``, at any depth (lazy imports count)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def allowed(relative: str, places: set[str]) -> bool:
    return any(relative == p or (p.endswith("/") and relative.startswith(p)) for p in places)


def test_each_confined_library_is_imported_only_where_it_belongs():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for package in imported_packages(path) & set(CONFINED):
            if not allowed(relative, CONFINED[package]):
                offenders.append(f"forecast/{relative} imports {package}")
    assert offenders == []


def test_the_checker_sees_lazy_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import tensorflow as tf\n    from keras import layers\n")
    assert imported_packages(sample) == {"tensorflow", "keras"}
    assert not allowed("outputs/charts.py", CONFINED["tensorflow"])
    assert allowed("cli/models.py", CONFINED["typer"])
