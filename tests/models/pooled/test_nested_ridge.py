"""Issue 25: the global network nests the ridge on its own inputs, so it is never worse than that ridge.

A small synthetic universe with a planted linear signal (tomorrow's return
follows today's volume surprise, one of the network's inputs): the ridge finds
it, and the nested network, trained briefly, must rank the held-out days at
least as well as the ridge on its own inputs, within 0.002.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.models.pooled.data import daily_rank_ic, pool, targets, time_split, usable_rows
from forecast.models.pooled.model import GlobalSettings

SETTINGS = GlobalSettings(lookback=10, horizon=3, units=4, head_units=4, members=2, epochs=3, patience=0, linear=True)


def planted_panel(n_tickers: int = 40, n_days: int = 420, seed: int = 7, strength: float = 0.3) -> pd.DataFrame:
    """Random-walk bars whose next-day return is ``strength`` x today's volume surprise (in units of the day's noise)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2019-01-01", periods=n_days)
    parts = []
    for i in range(n_tickers):
        surprise = rng.normal(size=n_days)
        noise = rng.normal(size=n_days)
        returns = 0.02 * (noise + strength * np.r_[0.0, surprise[:-1]])
        close = 20 * np.exp(np.cumsum(returns))
        opens = close * np.exp(rng.normal(0, 0.004, n_days))
        parts.append(pd.DataFrame({"date": days, "ticker": f"S{i:02d}", "open": opens, "close": close,
                                   "high": np.maximum(opens, close) * 1.01, "low": np.minimum(opens, close) * 0.99,
                                   "volume": np.exp(8 + surprise)}))
    return pd.concat(parts).set_index(["date", "ticker"]).sort_index()


def _three_way(data, lookback):
    days = np.unique(data.dates)
    split = time_split(data, lookback, days[-121], validation_end=days[-66])
    test = np.flatnonzero(usable_rows(data, lookback) & (data.dates > days[-61]) & np.isfinite(data.labels).all(axis=1))
    return split, test


def test_the_linear_path_is_exactly_the_ridge_of_the_tabular_learner():
    pytest.importorskip("sklearn")
    from forecast.models.pooled.data import flat_inputs
    from forecast.models.pooled.learners import RidgeLearner
    from forecast.models.pooled.network import fit_nested_ridge, linear_map

    data = pool(planted_panel(n_tickers=12, n_days=300), SETTINGS.horizon)
    split, test = _three_way(data, SETTINGS.lookback)
    rng = np.random.default_rng(0)
    window, static = rng.normal(size=(7, SETTINGS.lookback, 5)), rng.normal(size=(7, 5))
    mapped = np.c_[window.reshape(7, -1), static] @ linear_map(SETTINGS.lookback, 5, 5)
    np.testing.assert_allclose(mapped, flat_inputs(window, static, SETTINGS.lookback), atol=1e-6)

    target = targets(data, "rank", known_until=split.cut)
    ridge = RidgeLearner(SETTINGS.lookback)
    ridge.fit(data, target, split.train, split.validation)
    nested = fit_nested_ridge(data, target, split.train, split.validation, SETTINGS.lookback)
    from forecast.models.pooled.data import window_batch

    w, s = window_batch(data, test, SETTINGS.lookback)
    ours = np.c_[w.reshape(len(w), -1), s] @ nested.kernel[:, -1] + nested.bias[-1]
    assert nested.alpha == ridge.alpha
    np.testing.assert_allclose(ours, ridge.score(data, test), atol=1e-5)


@pytest.mark.slow
def test_the_network_is_never_worse_than_the_ridge_on_its_own_inputs():
    pytest.importorskip("sklearn")
    from forecast.models.pooled.learners import RidgeLearner
    from forecast.models.pooled.network import fit_global, predict_rows

    data = pool(planted_panel(), SETTINGS.horizon)
    split, test = _three_way(data, SETTINGS.lookback)
    target = targets(data, "rank", known_until=split.cut)
    ridge = RidgeLearner(SETTINGS.lookback)
    ridge.fit(data, target, split.train, split.validation)
    fit = fit_global(SETTINGS.network(), data, target, split.train, split.validation)

    def ic(scores):
        return daily_rank_ic(scores, data.labels[test, -1], data.dates[test], data.tickers[test])

    ridge_ic = ic(ridge.score(data, test))
    network_ic = ic(predict_rows(fit.model, data, test, SETTINGS.lookback)[:, -1])
    assert ridge_ic > 0.05  # the planted signal is there to be found
    assert fit.validation_rank_ic >= fit.linear_rank_ic  # the kept epoch never loses to the ridge on validation
    assert network_ic >= ridge_ic - 0.002, (network_ic, ridge_ic)


def _loss_value(kind: str, truth, guess) -> float:
    """The loss of one day: ``truth`` [B, H] ranks, ``guess`` [B, members, H] scores."""
    from forecast.models.pooled.network import _loss

    return float(_loss(kind)(np.asarray(truth, "float32"), np.asarray(guess, "float32")))


def test_pairwise_loss_of_two_names_is_the_logistic_loss_of_their_guessed_gap():
    truth = [[0.5], [-0.5]]  # the first name is above the second
    for a, b in [(0.3, -0.2), (-1.0, 2.0)]:
        expected = np.log1p(np.exp(-(a - b)))  # softplus(-(s_above - s_below))
        assert _loss_value("pairwise", truth, [[[a]], [[b]]]) == pytest.approx(expected, rel=1e-5)


def test_listnet_loss_of_two_names_is_the_cross_entropy_of_their_top_one_probabilities():
    from forecast.models.pooled.network import LISTNET_SHARPNESS

    truth, guess = np.array([0.5, -0.5]), np.array([0.3, -0.2])
    p = np.exp(truth * LISTNET_SHARPNESS) / np.exp(truth * LISTNET_SHARPNESS).sum()
    log_q = guess - np.log(np.exp(guess).sum())
    expected = -(p * log_q).sum()
    assert _loss_value("listnet", truth[:, None], guess[:, None, None]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["listnet", "pairwise", "ic"])
def test_a_ranking_loss_prefers_the_truths_order_and_ignores_a_shift_of_every_score(kind):
    rng = np.random.default_rng(3)
    truth = (np.argsort(np.argsort(rng.normal(size=(30, 2)), axis=0), axis=0) / 29 - 0.5)  # ranks in [-0.5, 0.5]
    in_order = np.repeat(truth[:, None, :], 2, axis=1) * 2.0  # two members, each scoring in the truth's order
    assert _loss_value(kind, truth, in_order) < _loss_value(kind, truth, -in_order)
    assert _loss_value(kind, truth, in_order + 5.0) == pytest.approx(_loss_value(kind, truth, in_order), abs=1e-5)
