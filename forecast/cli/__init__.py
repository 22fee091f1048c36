"""The command-line interface: parse, call one library function, print.

Kept thin on purpose; every command's work lives in the library. Heavy
packages (TensorFlow, matplotlib, scikit-learn) are imported inside the
commands that need them, so ``forecast --help``, ``fetch`` and ``plot`` start fast.

One module per command group, assembled here (the layout of huggingface_hub's ``hf``):

- ``data``: fetch, data list|show
- ``universe``: universe list|show
- ``models``: train, models list|show|rm
- ``forecasts``: predict
- ``evaluate``: backtest
- ``ranking``: rank
- ``outputs``: plot
- ``report``: report (the HTML page)
- ``ops``: run, doctor, config show

Shared options live in ``_options``, the global options' values in ``_state``,
log handlers in ``_logging``, and the one error boundary in ``_errors``.

Help is Click's plain layout (``rich_markup_mode=None``): Typer's Rich panels
print a ``<bool>`` type beside every flag and cut long option names at 80
columns; the plain layout shows flags as flags and wraps instead.
"""

from __future__ import annotations

import typer

from forecast.cli import data, evaluate, forecasts, models, ops, outputs, ranking, report, universe
from forecast.cli._errors import GuardedGroup
from forecast.cli._logging import setup_logging
from forecast.cli._options import HomeOpt, VerboseOpt, VersionFlag
from forecast.cli._state import state

HELP = "Forecast daily stock prices with recurrent networks, always beside naive baselines."

app = typer.Typer(
    cls=GuardedGroup,  # the error boundary for every command below
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # keeps the tushare token out of tracebacks
    rich_markup_mode=None,  # flags shown as flags, option names whole at any width
)


@app.callback()
def main_options(home: HomeOpt = None, verbose: VerboseOpt = False, version: VersionFlag = False) -> None:
    """Forecast daily stock prices with recurrent networks, always beside naive baselines."""
    state.home = home
    setup_logging(verbose)


# `forecast --help` lists the commands in this order, then the groups
app.command()(data.fetch)
app.command()(models.train)
app.command()(forecasts.predict)
app.command()(evaluate.backtest)
app.command()(ranking.rank)
app.command()(outputs.plot)
app.command()(report.report)
app.command()(ops.run)
app.command()(ops.doctor)
app.add_typer(data.data_app, name="data")
app.add_typer(universe.universe_app, name="universe")
app.add_typer(models.models_app, name="models")
app.add_typer(ops.config_app, name="config")


def main() -> None:
    app()
