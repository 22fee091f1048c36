"""The command-line interface: parse, call one library function, print.

Kept thin on purpose; every command's work lives in the library. Heavy
packages (TensorFlow, matplotlib, scikit-learn) are imported inside the
commands that need them, so ``forecast --help``, ``fetch`` and ``plot`` start fast.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from forecast.errors import ExitCode, ForecastError

app = typer.Typer(
    help="Forecast daily stock prices with recurrent networks, always beside naive baselines.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # keeps the tushare token out of tracebacks
    add_completion=False,
)
data_app = typer.Typer(help="Inspect the local market-data store.", no_args_is_help=True)
app.add_typer(data_app, name="data")
models_app = typer.Typer(help="List, show and remove trained models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


class Source(str, Enum):
    tushare = "tushare"
    csv = "csv"
    sample = "sample"


class Adjust(str, Enum):
    qfq = "qfq"
    hfq = "hfq"
    none = "none"


class Arch(str, Enum):
    lstm = "lstm"
    gru = "gru"
    rnn = "rnn"


class Preset(str, Enum):
    default = "default"
    tutorial = "tutorial"


class TargetTransform(str, Enum):
    log_return = "log-return"
    level = "level"


class _State:
    home: Optional[Path] = None


state = _State()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO if verbose else logging.WARNING)  # a --log-file handler may want more
    root = logging.getLogger("forecast")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def emit_json(payload) -> None:
    from forecast.jsonio import dumps

    typer.echo(dumps(payload))


def fail(message: str, code: int, as_json: bool = False) -> None:
    if as_json:
        emit_json({"error": message, "exit_code": int(code)})
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(int(code))


def handles_errors(command: Callable) -> Callable:
    """Turn library errors into a one-line message and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ForecastError as exc:
            fail(str(exc), exc.exit_code, kwargs.get("as_json", False))
        except KeyboardInterrupt:
            typer.echo("Error: interrupted", err=True)
            raise typer.Exit(130)

    return wrapper


@app.callback()
def main_options(
    home: Annotated[Optional[Path], typer.Option("--home", envvar="FORECAST_HOME", help="Workspace holding data/ and models/ (default: current directory).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
) -> None:
    """Forecast daily stock prices with recurrent networks, always beside naive baselines."""
    state.home = home
    _setup_logging(verbose)


def _store():
    from forecast.store import MarketStore

    return MarketStore(state.home)


def _print_fetch_report(report) -> None:
    line = f"{report.ticker}: {report.rows} rows {report.first_date}..{report.last_date}, +{report.new_rows} new, {report.revised_rows} revised"
    if report.last_close is not None:
        line += f", last close {report.last_close:.2f} ({report.adjust})"
    if report.calls:
        line += f", {report.calls} API calls"
    typer.echo(line)
    for note in report.notes:
        typer.echo(f"  {note}")
    for finding in report.validation.get("findings", []):
        more = ", ..." if finding["count"] > len(finding["examples"]) else ""
        typer.echo(f"warning: {report.ticker}: {finding['check']}: {finding['count']} row(s), e.g. {', '.join(finding['examples'])}{more}", err=True)


@app.command()
@handles_errors
def fetch(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers: 600519.SH, sh600519, 600519, or any symbol for CSV.")] = None,
    source: Annotated[Source, typer.Option(help="Where the bars come from.")] = Source.tushare,
    file: Annotated[Optional[Path], typer.Option("--file", help="CSV file to import (--source csv).")] = None,
    start: Annotated[Optional[str], typer.Option(help="First date for a new ticker (YYYY-MM-DD); default 2005-01-01.")] = None,
    end: Annotated[Optional[str], typer.Option(help="Last date (default: the newest published trading day).")] = None,
    adjust: Annotated[Adjust, typer.Option(help="Adjustment of the last close reported (tushare bars are stored raw with factors).")] = Adjust.qfq,
    date_format: Annotated[Optional[str], typer.Option(help="strptime format of the CSV dates, when they are ambiguous.")] = None,
    columns: Annotated[Optional[str], typer.Option(help="CSV column mapping, e.g. date=Day,close=Last,volume=Vol.")] = None,
    strict: Annotated[bool, typer.Option(help="Treat validation findings as errors and store nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Fetch daily bars into the local store: incremental from tushare, or import a CSV or the sample."""
    from forecast import fetching

    store = _store()
    tickers = tickers or []
    failures = []
    if source is Source.sample:
        reports = [fetching.import_sample(store, t, strict=strict) for t in (tickers or [fetching.SAMPLE_TICKER])]
    elif source is Source.csv:
        if file is None:
            fail("--source csv needs --file PATH", ExitCode.USAGE, as_json)
        if len(tickers) > 1:
            fail("--source csv imports one file for one ticker", ExitCode.USAGE, as_json)
        reports = [fetching.import_csv(store, tickers[0] if tickers else None, file, date_format=date_format,
                                       column_map=columns, strict=strict)]
    else:
        if not tickers:
            fail("name at least one ticker, e.g. forecast fetch 600519.SH", ExitCode.USAGE, as_json)
        from forecast.sources.tushare_pro import TushareClient, token_from_env
        from forecast.tickers import parse_ticker

        for ticker in tickers:  # a typo should not wait for a token check
            parse_ticker(ticker)
        # the token: environment first, then forecast.toml's [tushare] token
        client = TushareClient(token_from_env() or _app_config(None).tushare_token)
        reports, failures = fetching.update_from_tushare(store, tickers, client, start=start, end=end, strict=strict)
    for report in reports:  # the newest close on the basis the user asked for
        bars = store.read(report.ticker)
        if bars.price_basis == "raw" or bars.price_basis == adjust.value:
            report.last_close = float(bars.bars(adjust.value).frame["close"].iloc[-1])
            report.adjust = adjust.value
        else:
            report.notes.append(f"stored {bars.price_basis}-adjusted; --adjust {adjust.value} is not available for it")
    if as_json:
        emit_json({"results": [r.to_dict() for r in reports],
                   "failures": [{"ticker": f.ticker, "error": str(f.error), "exit_code": int(f.error.exit_code)} for f in failures]})
    else:
        for report in reports:
            _print_fetch_report(report)
    for failure in failures:
        typer.echo(f"Error: {failure.ticker}: {failure.error}", err=True)
    if failures:
        raise typer.Exit(int(failures[0].error.exit_code))


@data_app.command("list")
@handles_errors
def data_list(as_json: JsonFlag = False) -> None:
    """List the stored tickers with their date ranges."""
    store = _store()
    summaries = [store.read(t).summary() for t in store.tickers()]
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        typer.echo(f"no data in {store.root}; try: forecast fetch --source sample")
    for s in summaries:
        typer.echo(f"{s['ticker']:<12} {s['rows']:>6} rows  {s['first_date']}..{s['last_date']}  {s['source']} ({s['adjust']})")


@data_app.command("show")
@handles_errors
def data_show(
    ticker: Annotated[str, typer.Argument(help="Ticker to describe.")],
    adjust: Annotated[Adjust, typer.Option(help="Adjustment of the prices shown.")] = Adjust.qfq,
    as_json: JsonFlag = False,
) -> None:
    """Describe one stored ticker: rows, date range, source, adjustment and validation findings."""
    from forecast.tickers import parse_ticker

    store = _store()
    stored = store.read(parse_ticker(ticker))
    summary = stored.summary()
    bars = store.read_bars(stored.ticker, adjust.value)
    summary["adjust"] = bars.adjust
    last = bars.frame.iloc[-1]
    summary["last_bar"] = {k: (last[k].date().isoformat() if k == "date" else float(last[k])) for k in bars.frame.columns}
    if as_json:
        emit_json(summary)
        return
    typer.echo(f"{summary['ticker']}: {summary['rows']} rows, {summary['first_date']}..{summary['last_date']}")
    typer.echo(f"source {summary['source']}, prices {summary['adjust']}, updated {summary['updated_at']}")
    typer.echo(f"last bar: " + ", ".join(f"{k} {v}" for k, v in summary["last_bar"].items()))
    findings = summary["validation"]["findings"]
    typer.echo("validation: " + ("clean" if not findings else f"{len(findings)} finding(s)"))
    for f in findings:
        typer.echo(f"  {f['check']}: {f['count']} row(s), e.g. {', '.join(f['examples'])}")


def _registry():
    from forecast.registry import ModelRegistry

    return ModelRegistry(state.home)


def _train_config(preset: Preset, config_file: Optional[Path], overrides: dict):
    from forecast.config import build_train_config, read_toml

    if config_file is not None:
        file_options = read_toml(config_file).get("train", {})
    else:
        from forecast.store import resolve_home

        default_file = resolve_home(state.home) / "forecast.toml"
        file_options = read_toml(default_file).get("train", {}) if default_file.is_file() else {}
    return build_train_config(preset.value, file_options, overrides)


@app.command()
@handles_errors
def train(
    tickers: Annotated[list[str], typer.Argument(help="Tickers to train on (stored with forecast fetch).")],
    arch: Annotated[Optional[Arch], typer.Option(help="Recurrent layer: lstm, gru or rnn (SimpleRNN).")] = None,
    preset: Annotated[Preset, typer.Option(help="default: the tuned, fast model; tutorial: the course exercise.")] = Preset.default,
    config: Annotated[Optional[Path], typer.Option("--config", exists=True, dir_okay=False, help="TOML file with a [train] table (default: <home>/forecast.toml).")] = None,
    lookback: Annotated[Optional[int], typer.Option(min=1, help="Bars in each input window.")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Trading days forecast at once (direct multi-step).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Maximum training epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Windows per gradient step.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed; the same data, config and seed give the same model.")] = None,
    target: Annotated[Optional[str], typer.Option(help="Price column to forecast: close or open.")] = None,
    target_transform: Annotated[Optional[TargetTransform], typer.Option(help="log-return (default: 0 means no change) or level.")] = None,
    features: Annotated[Optional[str], typer.Option(help="Comma-separated inputs: close,open,high,low,volume,return,log_volume,range.")] = None,
    units: Annotated[Optional[str], typer.Option(help="Comma-separated units per recurrent layer, e.g. 64,32.")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout after each recurrent layer.")] = None,
    bidirectional: Annotated[Optional[bool], typer.Option("--bidirectional/--unidirectional", help="Bidirectional first layer.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Train on bars from this date (YYYY-MM-DD).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Train on bars up to this date.")] = None,
    adjust: Annotated[Optional[Adjust], typer.Option(help="Price adjustment to train on.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train a recurrent network per ticker and save it to the model registry."""
    from forecast.training import progress_mode, train_ticker

    overrides = {
        "arch": arch.value if arch else None, "lookback": lookback, "horizon": horizon, "epochs": epochs,
        "batch_size": batch_size, "lr": lr, "seed": seed, "target": target,
        "transform": target_transform.value if target_transform else None, "features": features, "units": units,
        "dropout": dropout, "bidirectional": bidirectional, "start": start, "end": end,
        "adjust": adjust.value if adjust else None,
    }
    cfg = _train_config(preset, config, overrides)
    store, registry = _store(), _registry()
    results = []
    for ticker in tickers:
        result = train_ticker(store, registry, ticker, cfg, progress="none" if as_json else progress_mode(quiet))
        meta = result.metadata
        results.append({"id": result.model_id, "ticker": meta["ticker"], "data_range": meta["data"]["range"],
                        "best_val_loss": meta["validation"]["val_loss"], "best_epoch": meta["validation"]["best_epoch"],
                        "val_rmse": meta["validation"]["rmse"], "val_naive_rmse": meta["validation"]["naive_rmse"],
                        "seconds": meta["train_seconds"]})
        if not as_json:
            r = results[-1]
            typer.echo(f"{r['id']}: trained on {r['data_range'][0]}..{r['data_range'][1]}, best val_loss {r['best_val_loss']:.4f} "
                       f"(epoch {r['best_epoch']}), val RMSE {r['val_rmse']:.2f} vs naive {r['val_naive_rmse']:.2f}, {r['seconds']:.1f}s")
    if as_json:
        emit_json(results)


@app.command()
@handles_errors
def predict(
    tickers: Annotated[list[str], typer.Argument(help="Tickers to forecast.")],
    model: Annotated[Optional[str], typer.Option("--model", help="Model id (default: the ticker's latest).")] = None,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Trading days to show (at most the model's horizon).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", dir_okay=False, help="Write the forecast rows to this CSV file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Forecast the next trading days after the last stored bar, with prediction intervals."""
    from forecast.predicting import LoadedModels, predict_ticker, save_forecast

    store, registry = _store(), _registry()
    loaded = LoadedModels(registry)
    results = [predict_ticker(store, registry, t, model, horizon, loaded) for t in tickers]
    for result in results:
        save_forecast(state.home, result)
    if out is not None:
        import pandas as pd

        from forecast.atomic import atomic_write_text

        atomic_write_text(out, pd.concat([r.to_frame() for r in results]).to_csv(index=False))
    if as_json:
        emit_json([r.to_dict() for r in results] if len(results) > 1 else results[0].to_dict())
        return
    for r in results:
        typer.echo(f"{r.ticker} ({r.model_id}): last {r.target} {r.last_value:.2f} on {r.last_date}")
        for p in r.points:
            bands = "  ".join(f"{int(float(l) * 100)}% [{lo:.2f}, {hi:.2f}]" for l, (lo, hi) in p.intervals.items())
            typer.echo(f"  {p.date}  {p.value:10.2f}  {bands}")


@app.command()
@handles_errors
def backtest(
    ticker: Annotated[str, typer.Argument(help="Ticker to backtest (stored with forecast fetch).")],
    models: Annotated[str, typer.Option(help="Comma-separated: default, tutorial, tutorial-gru, default-lstm, naive, drift, ma, maK, linear.")] = "default,naive,drift,ma,linear",
    test_days: Annotated[int, typer.Option(min=1, help="Walk forward through this many final trading days.")] = 250,
    refit_every: Annotated[int, typer.Option(min=1, help="Refit every model after this many origins.")] = 20,
    horizon: Annotated[int, typer.Option(min=1, help="Trading days forecast from each origin; each step is scored.")] = 5,
    rolling: Annotated[Optional[int], typer.Option(min=30, help="Train on the last W bars only (default: expanding window).")] = None,
    expanding: Annotated[bool, typer.Option("--expanding", help="Train on all bars up to each origin (the default).")] = False,
    target: Annotated[str, typer.Option(help="Price column to forecast: close or open.")] = "close",
    adjust: Annotated[Adjust, typer.Option(help="Price adjustment of the bars.")] = Adjust.qfq,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the networks' maximum epochs (e.g. for a quick look).")] = None,
    units: Annotated[Optional[str], typer.Option(help="Override the networks' units per layer, e.g. 16.")] = None,
    lookback: Annotated[Optional[int], typer.Option(min=1, help="Override the networks' lookback.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", dir_okay=False, help="Write the JSON result here, and the per-origin forecasts beside it as .csv.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk-forward backtest of networks and baselines, scored per horizon step against naive."""
    from forecast.atomic import atomic_write_text
    from forecast.backtest import format_table, save_backtest, walk_forward
    from forecast.jsonio import dumps
    from forecast.tickers import parse_ticker

    if expanding and rolling:
        fail("choose --expanding or --rolling W, not both", ExitCode.USAGE, as_json)
    name = str(parse_ticker(ticker))
    frame = _store().read_bars(name, adjust.value).frame
    overrides = {k: v for k, v in {"epochs": epochs, "units": units, "lookback": lookback}.items() if v is not None}
    result = walk_forward(frame, name, models=[m.strip() for m in models.split(",") if m.strip()], test_days=test_days,
                          refit_every=refit_every, horizon=horizon, window=rolling, target=target, network_overrides=overrides)
    json_path, csv_path = save_backtest(state.home, result)
    payload = json.loads(dumps(result.to_dict()))
    if out is not None:
        atomic_write_text(out, dumps(payload))
        atomic_write_text(out.with_suffix(".csv"), result.forecasts_frame().to_csv(index=False))
    if as_json:
        emit_json(payload)
        return
    typer.echo(format_table(result))
    typer.echo(f"saved {json_path} and {csv_path}")


class ChartKind(str, Enum):
    forecast = "forecast"
    backtest = "backtest"
    history = "history"
    training = "training"


@app.command()
@handles_errors
def plot(
    ticker: Annotated[str, typer.Argument(help="Ticker to chart.")],
    kind: Annotated[ChartKind, typer.Option(help="forecast, backtest, history or training.")] = ChartKind.forecast,
    model: Annotated[Optional[str], typer.Option("--model", help="Model id (training), or model name in the backtest.")] = None,
    days: Annotated[Optional[int], typer.Option(min=5, help="Trading days of history shown (default: 60 for forecast, 120 otherwise).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", dir_okay=False, help="Chart file, .png or .svg (default: <home>/charts/<TICKER>-<kind>.png).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Draw a chart from stored data, forecasts, backtests or training history (no TensorFlow)."""
    from forecast.charts import render

    info = render(state.home, ticker, kind.value, model, days or (60 if kind is ChartKind.forecast else 120), out)
    if as_json:
        emit_json({"path": str(info.path), "kind": info.kind, "width": info.width, "height": info.height})
    else:
        typer.echo(str(info.path))


config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _app_config(config_file: Optional[Path]):
    from forecast.config import load_app_config
    from forecast.store import resolve_home

    return load_app_config(resolve_home(state.home), config_file)


@config_app.command("show")
@handles_errors
def config_show(
    config: Annotated[Optional[Path], typer.Option("--config", dir_okay=False, help="Config file (default: <home>/forecast.toml).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the effective configuration (file < environment), secrets masked."""
    from forecast.store import resolve_home

    effective = {"home": str(resolve_home(state.home)), **_app_config(config).masked()}
    if as_json:
        emit_json(effective)
        return
    for key, value in effective.items():
        typer.echo(f"{key} = {json.dumps(value, ensure_ascii=False)}")


@app.command()
@handles_errors
def run(
    tickers: Annotated[Optional[list[str]], typer.Argument(help="Tickers (default: the config's tickers).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", dir_okay=False, help="Config file (default: <home>/forecast.toml).")] = None,
    retrain_after: Annotated[Optional[str], typer.Option(help="Retrain models older than DAYS days, or 'never' (only when missing).")] = None,
    outdir: Annotated[Optional[Path], typer.Option(file_okay=False, help="Output folder (default: <home>/daily): <outdir>/<date>/ and <outdir>/latest/.")] = None,
    source: Annotated[Optional[Source], typer.Option(help="Override the config's data source.")] = None,
    wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for an overlapping run before giving up (exit 7).")] = 600.0,
    log_file: Annotated[Optional[Path], typer.Option(dir_okay=False, help="Also append timestamped logs to this file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success; errors still go to stderr.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The daily job for cron: fetch, retrain when stale, predict, and write CSV, JSON and a chart per ticker."""
    import dataclasses

    from forecast.pipeline import run_daily

    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logging.getLogger("forecast").addHandler(handler)
    cfg = _app_config(config)
    changes = {}
    if retrain_after is not None:
        if retrain_after != "never" and not retrain_after.isdigit():
            fail("--retrain-after takes a number of days or 'never'", ExitCode.USAGE, as_json)
        changes["retrain_after_days"] = None if retrain_after == "never" else int(retrain_after)
    if source is not None:
        changes["source"] = source.value
    cfg = dataclasses.replace(cfg, **changes)
    if not (tickers or cfg.tickers):
        fail("no tickers: name some, or list them in forecast.toml (tickers = [...])", ExitCode.USAGE, as_json)
    summary = run_daily(state.home, cfg, tickers, outdir, wait_s=wait)
    logger = logging.getLogger("forecast.run")
    for outcome in summary.tickers:
        if outcome.ok:
            logger.info("%s: ok, model %s%s", outcome.ticker, outcome.model_id, " (retrained)" if outcome.retrained else "")
        else:
            typer.echo(f"Error: {outcome.ticker}: {outcome.error}", err=True)
    if as_json:
        emit_json(summary.to_dict())
    elif not quiet:
        for outcome in summary.tickers:
            if outcome.ok:
                typer.echo(f"{outcome.ticker}: forecast from {outcome.last_date} -> {outcome.outputs['chart']}")
    raise typer.Exit(summary.exit_code)


@models_app.command("list")
@handles_errors
def models_list(as_json: JsonFlag = False) -> None:
    """List trained models, newest last."""
    summaries = sorted(_registry().summaries(), key=lambda s: s["created_at"])
    if as_json:
        emit_json(summaries)
        return
    if not summaries:
        typer.echo("no models yet; try: forecast train 600519.SH")
    for s in summaries:
        mark = "*" if s["latest"] else " "
        typer.echo(f"{mark} {s['id']}  {s['data_range'][0]}..{s['data_range'][1]}  h={s['horizon']}  val RMSE {s['val_rmse']:.2f}")


@models_app.command("show")
@handles_errors
def models_show(model_id: Annotated[str, typer.Argument(help="Model id (see forecast models list).")], as_json: JsonFlag = False) -> None:
    """Show a model's configuration, data range, validation metrics and versions."""
    meta = _registry().metadata(model_id)
    if as_json:
        emit_json(meta)
        return
    brief = {k: v for k, v in meta.items() if k not in ("history", "scaling")}
    typer.echo(json.dumps(brief, indent=2, ensure_ascii=False))


@models_app.command("rm")
@handles_errors
def models_rm(model_id: Annotated[str, typer.Argument(help="Model id to delete.")]) -> None:
    """Delete a model from the registry."""
    _registry().remove(model_id)
    typer.echo(f"removed {model_id}")


def main() -> None:
    app()
