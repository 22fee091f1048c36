"""Charts people share: forecast, backtest, history, training curves and interval calibration.

Matplotlib only, Agg backend, no display. Every chart puts trading days on the
x axis (no weekend or holiday gaps), is readable at 1200x700, and is written
atomically. Nothing here imports TensorFlow: charts draw what ``predict``,
``backtest`` and ``train`` stored, as ``forecast.outputs.plotting`` hands it
to them (it finds it in the home). Titles put the company's name from the
cached listings beside the code where ``forecast.outputs.figures`` can draw it (a CJK
font is installed); the figure plumbing lives there.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.choices import ModelKind, adjust_words
from forecast.formatting import format_percent
from forecast.maths.intervals import band_columns, level_label
from forecast.models.backtest_records import BacktestRecord
from forecast.models.card import ModelCard
from forecast.models.results import ForecastResult
from forecast.outputs.figures import HEIGHT_PX, WIDTH_PX, display_name, new_figure, percent_formatter, save_figure, trading_day_ticks

FOOTER_CHARS = 200  # a forecast chart's footer at 8 pt: about 5.2 px a character, so a line of 200 fits 1,200 px


def _volume_panel(ax, x, volume) -> None:
    ax.bar(x, volume / 1e6, color="#9aa7b8", width=0.8)
    ax.set_ylabel("volume (M shares)")
    ax.grid(alpha=0.3)


@dataclass
class ChartInfo:
    path: Path
    kind: str
    width: int = WIDTH_PX
    height: int = HEIGHT_PX
    title: str = ""  # the main title's text, as drawn


def history_chart(bars: pd.DataFrame, ticker: str, days: int, path: Path, name: str = "") -> ChartInfo:
    recent = bars.tail(days).reset_index(drop=True)
    fig, (ax, ax_vol) = new_figure()
    x = np.arange(len(recent))
    ax.plot(x, recent["close"], color="#1f4e79", lw=1.4, label="close")
    ax.fill_between(x, recent["low"], recent["high"], color="#1f4e79", alpha=0.12, label="daily range")
    ax.set_title(f"{display_name(ticker, name)}: last {len(recent)} trading days")
    ax.set_ylabel("price")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    _volume_panel(ax_vol, x, recent["volume"].to_numpy())
    trading_day_ticks(ax_vol, [d.date().isoformat() for d in recent["date"]])
    ax_vol.set_xlabel("trading day")
    fig.tight_layout()
    return ChartInfo(save_figure(fig, path), "history", title=ax.get_title())


def forecast_chart(bars: pd.DataFrame, forecast: ForecastResult, days: int, path: Path,
                   skill: float | None = None, name: str = "", ranking: str | None = None) -> ChartInfo:
    """Last ``days`` bars, the forecast path after them, its bands, and a footer.

    ``ranking``: a universe model's score in its cross-sectional backtest, as words. A forecast that is not its
    ticker's forecast of record (another model's, kept apart) says so in its title.
    """
    recent = bars.tail(days).reset_index(drop=True)
    target = forecast.target
    fig, (ax, ax_vol) = new_figure()
    x = np.arange(len(recent))
    ax.plot(x, recent[target], color="#1f4e79", lw=1.4, label=f"{target} (observed)")
    last_x = x[-1]
    ax.scatter([last_x], [recent[target].iloc[-1]], color="black", zorder=5, s=30,
               label=f"last bar {forecast.last_date}")
    points = forecast.points
    fx = np.arange(last_x + 1, last_x + 1 + len(points))
    path_x = np.concatenate([[last_x], fx])
    values = [forecast.last_value, *[p.value for p in points]]
    levels = forecast.levels
    for level, alpha in zip(reversed(levels), (0.15, 0.3, 0.4, 0.5)):  # widest band first, lightest
        lower = [forecast.last_value, *[p.intervals[level][0] for p in points]]
        upper = [forecast.last_value, *[p.intervals[level][1] for p in points]]
        ax.fill_between(path_x, lower, upper, color="#d9822b", alpha=alpha, lw=0, label=f"{level_label(level)} interval")
    ax.plot(path_x, values, color="#d9822b", lw=2, marker="o", ms=3, label=f"forecast ({forecast.family})")
    ax.axhline(forecast.last_value, color="grey", lw=0.8, ls="--", label="naive: tomorrow = today")
    ax.axvline(last_x + 0.5, color="grey", lw=0.6, ls=":")
    apart = "" if forecast.of_record else f" by {forecast.family} (kept apart: not the forecast of record)"
    ax.set_title(f"{display_name(forecast.ticker, name)}: {len(points)}-day forecast after {forecast.last_date}{apart}")
    ax.set_ylabel(f"price ({target}, {adjust_words(forecast.adjust)})")  # the same words as the report's chart
    # outside the axes: a widening band may fill any corner of the price panel
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    ax.grid(alpha=0.3)
    _volume_panel(ax_vol, x, recent["volume"].to_numpy())
    labels = [d.date().isoformat() for d in recent["date"]] + [p.date for p in points]
    trading_day_ticks(ax_vol, labels)
    ax_vol.set_xlim(-1, len(labels))
    ax_vol.set_xlabel("trading day (forecast dates from the exchange calendar)")
    summary = forecast.summary
    trained = summary.data_range or ("?", "?")
    held_out = summary.validation_skill_vs_naive
    if skill is not None:
        skill_text = f"walk-forward skill vs naive {format_percent(skill, sign=True)}"
    elif held_out is not None:
        skill_text = f"validation-period skill vs naive {format_percent(held_out, sign=True)} (no walk-forward backtest yet)"
    elif summary.kind == ModelKind.GLOBAL and ranking:
        skill_text = ranking
    elif summary.kind == ModelKind.GLOBAL:  # one network for a universe: its skill is how it ranks the universe
        skill_text = (f"skill: not measured yet (run forecast backtest --universe {summary.universe or 'NAME'} "
                      "--models global,momentum,naive)")
    else:
        skill_text = "skill vs naive: not measured yet (run forecast backtest)"
    footer = textwrap.wrap(f"model {forecast.model_id} | trained on {trained[0]}..{trained[1]} | {skill_text} | "
                           "intervals: split-conformal, not a guarantee", FOOTER_CHARS, break_on_hyphens=False)
    fig.text(0.01, 0.005, "\n".join(footer), fontsize=8, color="#444444", verticalalignment="bottom")
    fig.tight_layout(rect=(0, 0.03 * len(footer), 1, 1))
    return ChartInfo(save_figure(fig, path), "forecast", title=ax.get_title())


def interval_footer(record: BacktestRecord | None, model: str) -> str:
    """Return "80% interval: coverage 79.8% / 80.4%, Winkler 95.0 / 207.9 (steps 1 / 5) | 95% ...", or "" without scores."""
    score = record.models.get(model) if record else None
    steps = score.get("by_step") if isinstance(score, dict) else None
    if not steps or "winkler" not in steps[0]:
        return ""  # a backtest stored before intervals were scored
    first, last = steps[0], steps[-1]
    label = f"steps 1 / {last['step']}" if len(steps) > 1 else "step 1"
    parts = []
    for level in sorted(first["coverage"], key=float):
        cov = " / ".join(format_percent(s["coverage"][level]) for s in ((first, last) if len(steps) > 1 else (first,)))
        wink = " / ".join(f"{s['winkler'][level]:.1f}" for s in ((first, last) if len(steps) > 1 else (first,)))
        parts.append(f"{level_label(level)} interval: coverage {cov}, Winkler {wink}")
    return " | ".join(parts) + f" ({label}; Winkler in price units, lower is better)"


# Backtest lines, bottom to top: the band, the model (wide), actual (thin black), naive (dashed, on top).
# Naive forecasts are yesterday's actual, so the model and naive often overlap; dashes on top keep both visible.
_ACTUAL_STYLE = {"color": "black", "lw": 0.9, "zorder": 4}
_MODEL_STYLE = {"color": "#d9822b", "lw": 2.2, "alpha": 0.9, "zorder": 3}
_NAIVE_STYLE = {"color": "#1f5fa8", "lw": 1.2, "ls": (0, (4, 3)), "zorder": 5}
_BETTER, _WORSE = "#2e7d32", "#c62828"


@dataclass(frozen=True)
class StepOneScore:
    """RMSE and skill against naive of one model's one-day-ahead forecasts over a backtest window."""

    name: str
    rmse: float
    skill: float

    def label(self) -> str:
        return f"{self.name}: RMSE {self.rmse:.2f}, skill vs naive {format_percent(self.skill, sign=True)}"


def step_one_scores(actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray | None, model: str) -> list[StepOneScore]:
    """Return the model's (and naive's, when there is one) step-1 RMSE and skill over the rows with an actual."""
    from forecast.maths import metrics

    ok = np.isfinite(actual) & np.isfinite(predicted) & (np.isfinite(naive) if naive is not None else True)
    model_rmse = metrics.rmse(actual[ok], predicted[ok])
    if naive is None:  # naive itself scores 0 by definition; a model without naive beside it has no skill figure
        return [StepOneScore(model, model_rmse, 0.0 if model == "naive" else float("nan"))]
    naive_rmse = metrics.rmse(actual[ok], naive[ok])
    return [StepOneScore(model, model_rmse, metrics.skill(model_rmse, naive_rmse)),
            StepOneScore("naive", naive_rmse, 0.0)]


def squared_error_gain(actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray) -> np.ndarray:
    """Return, day by day, the cumulative (naive's - the model's) squared error over naive's total: shape (n,).

    Above 0 the model has done better than naive so far; the last value is
    1 - SSE_model / SSE_naive over the window. Days without an actual add nothing.
    """
    diff = np.nan_to_num((naive - actual) ** 2 - (predicted - actual) ** 2)
    total = float(np.nansum((naive - actual) ** 2))
    return np.cumsum(diff) / total if total > 0 else np.zeros(len(diff))


def backtest_chart(forecasts: pd.DataFrame, ticker: str, model: str, path: Path,
                   record: BacktestRecord | None = None, name: str = "") -> ChartInfo:
    """Step-1 actual, model and naive over the test window, RMSE and skill of both, which one did better, interval scores."""
    step1 = forecasts[forecasts["step"] == 1]
    chosen = step1[step1["model"] == model].reset_index(drop=True)
    naive = step1[step1["model"] == "naive"].reset_index(drop=True)
    with_naive = len(naive) == len(chosen) and model != "naive"
    fig, (ax, ax_res) = new_figure(ratios=(2, 1))
    x = np.arange(len(chosen))
    actual = chosen["actual"].to_numpy(dtype="float64")
    predicted = chosen["predicted"].to_numpy(dtype="float64")
    naive_predicted = naive["predicted"].to_numpy(dtype="float64") if with_naive else None
    levels = sorted(float(c[len("lower_"):]) / 100 for c in chosen.columns if c.startswith("lower_"))
    if levels:  # the narrowest band keeps the chart readable
        lower, upper = band_columns(levels[0])
        ax.fill_between(x, chosen[lower], chosen[upper], color="#d9822b", alpha=0.15, lw=0, zorder=1,
                        label=f"{model} {level_label(levels[0])} interval")
    ax.plot(x, predicted, label=f"{model} (1 day ahead)", **_MODEL_STYLE)
    ax.plot(x, actual, label="actual", **_ACTUAL_STYLE)
    if naive_predicted is not None:
        ax.plot(x, naive_predicted, label="naive (tomorrow = today)", **_NAIVE_STYLE)
    scores = step_one_scores(actual, predicted, naive_predicted, model)
    ax.set_title(f"{display_name(ticker, name)}: walk-forward backtest, {len(chosen)} days, one day ahead\n"
                 + "   |   ".join(score.label() for score in scores), fontsize=11)
    ax.set_ylabel("price")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    ax.grid(alpha=0.3)
    if naive_predicted is not None:
        _gain_panel(ax_res, x, squared_error_gain(actual, predicted, naive_predicted), model)
    else:
        ax_res.bar(x, actual - predicted, color="#d9822b", width=0.8, label=f"{model} residual")
        ax_res.axhline(0, color="black", lw=0.6)
        ax_res.set_ylabel("actual - predicted")
        ax_res.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax_res.grid(alpha=0.3)
    trading_day_ticks(ax_res, list(chosen["target_date"]))
    ax_res.set_xlabel("trading day")
    footer = interval_footer(record, model)
    if footer:
        fig.text(0.01, 0.005, f"{model}: {footer}", fontsize=8, color="#444444")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
    else:
        fig.tight_layout()
    return ChartInfo(save_figure(fig, path), "backtest", title=ax.get_title())


def _gain_panel(ax, x: np.ndarray, gain: np.ndarray, model: str) -> None:
    """Cumulative squared-error gain over naive: green while the model leads, red while naive does."""
    ax.plot(x, gain, color="black", lw=1)
    ax.fill_between(x, gain, 0, where=gain >= 0, color=_BETTER, alpha=0.35, lw=0, interpolate=True,
                    label=f"{model} better than naive so far")
    ax.fill_between(x, gain, 0, where=gain < 0, color=_WORSE, alpha=0.35, lw=0, interpolate=True,
                    label="naive better so far")
    ax.axhline(0, color="black", lw=0.6)
    final = float(gain[-1]) if len(gain) else 0.0
    winner = model if final > 0 else "naive" if final < 0 else "neither"
    ax.set_ylabel("squared-error gain\nvs naive (cumulative)", fontsize=9)
    ax.yaxis.set_major_formatter(percent_formatter(1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title=f"over the window:\n{winner} did better\n({format_percent(final, digits=1, sign=True)} of naive's\nsquared error)",
              title_fontsize=8, alignment="left")


CALIBRATION_BAND = 0.03  # the shaded tolerance around nominal coverage


def calibration_chart(record: BacktestRecord, ticker: str, path: Path, name: str = "") -> ChartInfo:
    """Observed against nominal coverage at every horizon step, one panel per level, one line per model; beside each,
    dashed in the same colour, its bands recalibrated online (``adaptive``), where the record scored them (a backtest
    stored before it did has only the fixed bands' lines)."""
    models = {model: score["by_step"] for model, score in record.models.items()
              if isinstance(score, dict) and score.get("by_step")}
    levels = sorted({lv for steps in models.values() for lv in steps[0].get("coverage", {})}, key=float)
    fig, axes = new_figure(rows=max(1, len(levels)), ratios=(1,) * max(1, len(levels)))
    steps = np.arange(1, record.horizon + 1)
    for ax, level in zip(axes, levels):
        nominal = float(level)
        ax.axhspan(nominal - CALIBRATION_BAND, nominal + CALIBRATION_BAND, color="#9aa7b8", alpha=0.25, lw=0,
                   label=f"nominal ± {CALIBRATION_BAND:.0%}")
        ax.axhline(nominal, color="black", lw=1, ls="--", label=f"nominal {level_label(level)}")
        for n, (model, by_step) in enumerate(models.items()):  # not ``name``: that is the company's, for the title
            colour = f"C{n % 10}"
            observed = [s["coverage"].get(level, np.nan) for s in by_step]
            ax.plot(steps[: len(observed)], observed, color=colour, marker="o", ms=4, lw=1.4, label=model)
            adaptive = _adaptive_coverage(by_step, level)
            if adaptive is not None:
                method, covered = adaptive
                ax.plot(steps[: len(covered)], covered, color=colour, marker="^", ms=5, mfc="white", lw=1.1, ls=":",
                        label=f"{model} adaptive ({method})")
        ax.set_ylabel(f"observed coverage of the {level_label(level)} interval")
        ax.yaxis.set_major_formatter(percent_formatter())
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)  # beside the points, not on them
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{display_name(ticker, name)}: interval calibration, walk-forward {record.first_origin}..{record.last_origin} "
                      f"({record.origins} origins)")
    axes[-1].set_xticks(steps)
    axes[-1].set_xlabel("horizon step (trading days ahead)")
    fig.tight_layout()
    return ChartInfo(save_figure(fig, path), "calibration", title=axes[0].get_title())


def _adaptive_coverage(by_step: list[dict], level: str) -> tuple[str, list[float]] | None:
    """(method, the recalibrated bands' coverage at each step) of one model and level; None when the record has none."""
    method, covered = "adaptive", []
    for step in by_step:
        adaptive = step.get("adaptive")
        if not isinstance(adaptive, dict) or not isinstance(adaptive.get("coverage"), dict):
            return None
        method = str(adaptive.get("method", method))
        value = adaptive["coverage"].get(level)
        covered.append(np.nan if value is None else float(value))
    return (method, covered) if not np.isnan(covered).all() else None


def universe_training_chart(card, path: Path, name: str = "") -> ChartInfo:
    """A universe (global) model's training: its validation Rank IC after each epoch, and the epoch kept."""
    scores = [float(s) if isinstance(s, (int, float)) else np.nan for s in (card.validation.get("scores") or [])]
    fig, (ax,) = new_figure(rows=1)
    epochs = np.arange(1, len(scores) + 1)
    ax.plot(epochs, scores, marker="o", label="validation Rank IC (daily, mean)", color="#d9822b")
    best = card.validation.get("best_epoch")
    if best:
        ax.axvline(best, color="grey", ls="--", lw=0.8, label=f"epoch kept: {best}")
    ax.axhline(0.0, color="black", lw=0.6)
    who = f"{name}: " if name else ""  # the ticker it was asked for, when one was
    ax.set_title(f"{who}training of the universe model {card.id} ({card.universe}, {len(card.tickers)} tickers)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"Rank IC at step {card.horizon}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return ChartInfo(save_figure(fig, path), "training", title=ax.get_title())


def training_chart(card: ModelCard, path: Path, name: str = "") -> ChartInfo:
    history = card.history
    fig, (ax,) = new_figure(rows=1)
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    ax.plot(epochs, history.get("loss", []), label="training loss", color="#1f4e79")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], label="validation loss", color="#d9822b")
    best = card.validation.get("best_epoch")
    if best:
        ax.axvline(best, color="grey", ls="--", lw=0.8, label=f"best epoch {best} (weights kept)")
    ax.set_title(f"{display_name(card.ticker, name)}: training of {card.id}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE, scaled target)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return ChartInfo(save_figure(fig, path), "training", title=ax.get_title())
