"""``forecast doctor``: find what the tool can no longer read, and move it aside.

First the home itself: missing, not a folder, not readable or not writable
(then nothing else is looked at, or repaired, until it is fixed). Then every
folder of the home's layout that is something else (a file, a link to
nothing); every lock path (``data/.lock``, ``models/.lock``, ``.run.lock``,
``data/backfill/.lock``, ``forecasts/@*/.lock``) that is no lock file; every
stored series (``MarketStore.read``); the universe and calendar caches (``data/universe/``,
``data/calendar/``: Parquet with the columns their readers need); every model folder: its card through
``ModelRegistry.card`` and its ``model.keras`` read as the loaders would
without TensorFlow (a zip whose every member passes its CRC check, a
``config.json`` with only the layer classes the product's networks use, a
``model.weights.h5`` h5py can read; then the network loaded in numpy as
``predict`` and ``rank`` load it, a global one's weights' shapes checked against its card, and run once);
every pointer (``models/latest/<TICKER>``, ``models/global/.latest/<UNIVERSE>``)
and every pin (``models/.pinned/<TICKER>``); every stored forecast and backtest
(``results.load_*``, ``backtest_records.load_*``), the forecasts kept apart (``forecasts/<TICKER>/other/``,
``forecasts/@<UNIVERSE>/other.json``: ``results.load_*``), every adaptive interval state
(``forecasts/<TICKER>/adaptive/``: ``predicting.read_adaptive_state``), and the leftovers of killed writes: ``*.tmp`` files,
``models/.staging-*`` folders, ``.<name>.copy`` files. ``linked_folders``
names the folders of the home that are links, and where they lead: not a
problem, but worth knowing when a disk is missing.

Promises: ``examine`` only reads; it writes, locks and creates nothing.
``repair`` deletes no data: each problem path moves whole to ``quarantine/<UTC
stamp>/<its path relative to the home>`` (across disks: copy, then remove the
original); the one thing removed is an empty folder where a lock file belongs.
A pointer moved aside is written again, at the newest valid model of its ticker
or universe, if there is one. It waits a couple of seconds at most for each
area's writer lock (``data/.lock``, ``models/.lock``, ``.run.lock`` for the
daily folder), looks again under them, and moves only what is still broken;
what lies under a lock a writer holds stays, and is reported. A leftover whose
writer (the pid in its name) still runs is not debris. Problems of the home
itself and links to a missing folder are only reported: they need a person.
Never: imports TensorFlow (every network loads in numpy, as ``predict`` loads it), follows a name out of
the home, or looks inside ``quarantine/``.

The modules, by concern: ``findings`` (Finding, healthy, exit_code), ``home``
(the home, its folders, locks, links and debris), ``store`` (bars and caches),
``archives`` (a model.keras read without TensorFlow), ``models`` (per-ticker
models, pointers, pins), ``universe_models``, ``outputs`` (forecasts, batches,
the forecasts kept apart, backtests), ``adaptive`` (the interval states),
``checkup`` (``examine``) and ``quarantine`` (``repair``).
"""

from forecast.workflow.doctor.archives import GLOBAL_LAYERS, TICKER_LAYERS
from forecast.workflow.doctor.checkup import examine
from forecast.workflow.doctor.findings import FOLDER, HOME, LOCK, PIN, Finding, exit_code, healthy
from forecast.workflow.doctor.home import linked_folders
from forecast.workflow.doctor.quarantine import LOCK_WAIT_S, repair

__all__ = ["FOLDER", "GLOBAL_LAYERS", "HOME", "LOCK", "LOCK_WAIT_S", "PIN", "TICKER_LAYERS", "Finding", "examine", "exit_code",
           "healthy", "linked_folders", "repair"]
