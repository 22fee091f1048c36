"""What the store refuses and what it stores with a warning: data/validation.py, through its two entry points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.data.calendar import get_calendar
from forecast.data.validation import refuse_unusable, validate_bars
from forecast.errors import BadInputError, ValidationFailed
from forecast.maths.intervals import check_levels


def bars(close, volume=1000.0) -> pd.DataFrame:
    close = np.asarray(close, dtype="float64")
    dates = pd.bdate_range("2021-01-04", periods=len(close))
    return pd.DataFrame({"date": dates, "open": close, "high": close, "low": close, "close": close,
                         "volume": np.broadcast_to(np.asarray(volume, dtype="float64"), close.shape).copy()})


def test_a_source_that_sends_only_negative_prices_is_refused():
    with pytest.raises(ValidationFailed, match="every close price is zero or negative"):
        refuse_unusable(bars([-5.0] * 30), "600519.SH")


def test_a_few_negative_qfq_closes_are_a_warning_not_a_refusal():
    frame = bars([-1.0, -0.5, 2.0, 2.1, 2.2])
    refuse_unusable(frame, "600519.SH")  # raises nothing: a long-adjusted history can go below zero
    found = {f.check: f.count for f in validate_bars(frame, None, get_calendar("business-days")).findings}
    assert found["non-positive close prices"] == 2


def test_a_negative_volume_is_named_with_its_date():
    frame = bars([10.0, 10.1, 10.2], volume=[100.0, -3.0, 100.0])
    [finding] = [f for f in validate_bars(frame, None, get_calendar("business-days")).findings if f.check == "negative volume"]
    assert finding.count == 1 and finding.examples == ["2021-01-05"]


def test_a_file_without_volume_is_not_a_missing_value_on_every_row_but_a_gap_in_one_still_is():
    calendar = get_calendar("business-days")

    def missing(frame) -> int:
        return {f.check: f.count for f in validate_bars(frame, None, calendar).findings}.get("missing values", 0)

    assert missing(bars([10.0, 10.1, 10.2, 10.3], volume=np.nan)) == 0  # a close-only CSV: no volume at all
    assert missing(bars([10.0, 10.1, 10.2, 10.3], volume=[100.0, np.nan, 100.0, 100.0])) == 1  # one day's volume lost
    no_open = bars([10.0, 10.1, 10.2, 10.3], volume=np.nan)
    no_open.loc[2, "open"] = np.nan
    assert missing(no_open) == 1  # prices are always judged


def test_interval_levels_that_repeat_are_refused():
    with pytest.raises(BadInputError, match="differ"):
        check_levels([0.8, 0.8])
    assert check_levels([0.95, 0.8]) == (0.8, 0.95)


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999999"])
def test_a_seed_numpy_cannot_take_is_bad_input_before_tensorflow_loads(home, seed):
    import subprocess
    import sys

    code = (f"import sys; from forecast.cli import main; sys.argv = ['forecast', 'train', '600519.SH', '--seed', {seed!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print('exit', e.code, 'tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-3:] == ["exit", "3", "False"], done.stdout + done.stderr
    assert "seed" in done.stderr and len(done.stderr.strip().splitlines()) == 1
