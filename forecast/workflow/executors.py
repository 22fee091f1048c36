"""Executors: map one job function over many tickers, each isolated from the others' failures.

A job is a plain function of one item (a ticker) whose inputs come from its
arguments and the workspace, never from state left by an earlier item. An
executor runs it for every item and returns one Outcome per item, in the order
of the items: the value, or the error as a one-line message with its exit
code. Any exception is caught per item, so one bad ticker never stops the
others; Ctrl-C still stops everything. ``on_done`` hears of each item as it
ends (in the order they end), in the calling process: progress and printing
stay there.

- ``SerialExecutor``: one item after another in this process (the default;
  one TensorFlow process already fills 2 cores).
- ``PoolExecutor``: ``--workers N``, N spawned processes on this machine.
- ``RayExecutor``: ``--executor ray``, Ray tasks on a cluster (``--ray-address``)
  or on a local Ray started for the call. Ray is the optional extra
  ``forecast[ray]`` and is imported here only, inside the executor.

A job for the pool or Ray must pickle: a module-level function, a
``functools.partial`` of one, or a dataclass with ``__call__`` (forecast/workflow/jobs.py).
Each worker is given its CPU count as TensorFlow's thread counts in its
environment before anything imports TensorFlow (jobs import it inside their bodies).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from forecast.choices import ExecutorKind
from forecast.errors import ExitCode, ForecastError, MissingExtraError, os_error_message
from forecast.progress import ProgressReporter
from forecast.redact import redact

log = logging.getLogger(__name__)
T = TypeVar("T")
RAY_EXTRA_HINT = "pip install 'forecast[ray]'"
CPUS_PER_TASK = 1  # a per-ticker network is small: one thread each beats two per task on a many-core node


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one job did for one item: ``value`` when it worked, else ``error`` and ``exit_code``.

    ``seconds`` is the time the job took where it ran (a worker's, not the caller's wait).
    """

    item: str
    value: T | None = None
    error: str | None = None
    exit_code: int = int(ExitCode.OK)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def run_job(job: Callable[[str], T], item: str) -> Outcome[T]:
    """Run ``job(item)`` and return its Outcome; no exception but KeyboardInterrupt escapes."""
    started = time.perf_counter()
    try:
        value = job(item)
        return Outcome(item, value=value, seconds=time.perf_counter() - started)
    except ForecastError as exc:
        return Outcome(item, error=redact(str(exc)), exit_code=int(exc.exit_code), seconds=time.perf_counter() - started)
    except OSError as exc:  # a home this user cannot write, a full disk: the item's own bad input, as at the CLI's boundary
        return Outcome(item, error=redact(os_error_message(exc)), exit_code=int(ExitCode.BAD_INPUT),
                       seconds=time.perf_counter() - started)
    except Exception as exc:  # a bug or an unforeseen input: this item fails, the others go on
        log.debug("%s: unexpected error", item, exc_info=True)
        return Outcome(item, error=redact(f"internal error: {type(exc).__name__}: {exc}"), exit_code=int(ExitCode.INTERNAL),
                       seconds=time.perf_counter() - started)


def _ray_worker_lost(exc: BaseException) -> bool:
    """Whether Ray says the process or node running a task went away; a task's own error (RayTaskError) is not that."""
    if not type(exc).__module__.startswith("ray."):
        return False
    from ray import exceptions as ray_errors  # only reached with a Ray exception in hand: Ray is imported already

    lost = tuple(getattr(ray_errors, name) for name in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError",
                                                        "ObjectLostError", "OwnerDiedError") if hasattr(ray_errors, name))
    return isinstance(exc, lost) and not isinstance(exc, ray_errors.RayTaskError)


def _lost(item: str, exc: BaseException) -> Outcome:
    """The Outcome of an item whose worker never answered.

    The worker was killed (out of memory, a signal) or its node went away:
    exit 10, rerun, not a bug. An exception of our own making on the way
    back (a value that would not pickle) is still the internal error it is.
    """
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    why = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    if isinstance(exc, BrokenProcessPool) or _ray_worker_lost(exc):
        return Outcome(item, error=redact(f"the worker running it was lost, killed by the machine or its node gone "
                                          f"({why}); rerun it, with fewer --workers if memory ran out"),
                       exit_code=int(ExitCode.WORKER_LOST))
    return Outcome(item, error=redact(f"internal error: the worker running it answered nothing usable ({why})"),
                   exit_code=int(ExitCode.INTERNAL))


class Executor(Protocol):
    parallel: bool  # runs jobs in other processes: in-process reporters (epoch bars) cannot follow them there

    def map(self, job: Callable[[str], T], items: Sequence[str],
            on_done: Callable[[Outcome[T]], None] | None = None) -> list[Outcome[T]]: ...


class SerialExecutor:
    """Runs the jobs one after another in this process (one TensorFlow process already fills 2 cores).

    ``fail_fast`` stops at the first failure; the items not run are left out of the result.
    """

    parallel = False

    def __init__(self, fail_fast: bool = False):
        self.fail_fast = fail_fast

    def map(self, job: Callable[[str], T], items: Sequence[str],
            on_done: Callable[[Outcome[T]], None] | None = None) -> list[Outcome[T]]:
        outcomes = []
        for item in items:
            outcome = run_job(job, item)
            if on_done is not None:
                on_done(outcome)
            outcomes.append(outcome)
            if self.fail_fast and not outcome.ok:
                break
        return outcomes


def thread_env(cpus: int) -> dict[str, str]:
    """The environment that gives a worker's TensorFlow (and BLAS) ``cpus`` threads; set before TensorFlow is imported."""
    n = max(1, int(cpus))
    return {"TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": str(min(n, 2)), "OMP_NUM_THREADS": str(n)}


_worker_job: Callable[[str], Any] | None = None  # in a pool's process: the one job it runs for every item


def _start_worker(env: dict[str, str], job: Callable[[str], Any]) -> None:
    """Pool initializer: runs in each fresh process before its first item; the job arrives once, not once per item."""
    global _worker_job
    os.environ.update(env)
    _worker_job = job


def _run_worker_job(item: str) -> Outcome:
    assert _worker_job is not None, "a pool process runs items only after _start_worker"
    return run_job(_worker_job, item)


def _in_order(items: Sequence[str], finished: dict[int, Outcome[T]]) -> list[Outcome[T]]:
    return [finished[i] for i in range(len(items)) if i in finished]


class PoolExecutor:
    """``workers`` spawned processes on this machine, each with cpu_count // workers TensorFlow threads.

    Spawned, not forked: a forked child of a process that has started
    TensorFlow's thread pools can hang. ``fail_fast`` cancels the items not
    started yet; those already running finish and are reported.
    """

    parallel = True

    def __init__(self, workers: int, fail_fast: bool = False):
        self.workers, self.fail_fast = workers, fail_fast

    def map(self, job: Callable[[str], T], items: Sequence[str],
            on_done: Callable[[Outcome[T]], None] | None = None) -> list[Outcome[T]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if not items:
            return []
        env = thread_env((os.cpu_count() or 1) // self.workers)
        finished: dict[int, Outcome[T]] = {}
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)), mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(env, job))
        pending = {pool.submit(_run_worker_job, item): i for i, item in enumerate(items)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                stop = False
                for future in done:
                    i = pending.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        outcome = future.result()
                    except Exception as exc:  # the process died (killed, out of memory), or the job did not pickle
                        outcome = _lost(items[i], exc)
                    finished[i] = outcome
                    if on_done is not None:
                        on_done(outcome)
                    stop = stop or (self.fail_fast and not outcome.ok)
                if stop:  # those not started never start; those running finish and are reported
                    for future in pending:
                        future.cancel()
        finally:  # fail-fast or Ctrl-C: what has not started never starts
            pool.shutdown(wait=True, cancel_futures=True)
        return _in_order(items, finished)


def import_ray() -> Any:
    """Return the ``ray`` module, or raise MissingExtraError naming the extra to install (exit 2)."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"--executor ray needs Ray, which is not installed: {RAY_EXTRA_HINT}") from None
    return ray


def _raylet_messages_to_log(ray: Any) -> None:
    """Send the raylet's error messages (a worker died, ...) to this module's log, never to stdout.

    Ray's driver prints them on ``sys.stdout`` from a thread of its own
    (``listen_error_messages``), which would break ``--json`` output; the
    item whose worker died is reported as that item's failure already, so the
    raylet's several lines go to the debug log (``-v``). Done once per process;
    a Ray without that hook is left as it is.
    """
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # another layout of Ray: nothing to patch
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_forecast_quiet", False):
        return

    def print_to_stdstream(data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and data.get("pid") == "raylet":
            log.debug("ray: %s", " ".join(str(line) for line in data.get("lines", [])))
            return None
        return original(data, *args, **kwargs)

    print_to_stdstream._forecast_quiet = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = print_to_stdstream


class RayExecutor:
    """One Ray task per item (``num_cpus=CPUS_PER_TASK``) on the cluster at ``address``, else on a local Ray.

    A local Ray is started for the call with ``num_cpus`` CPUs (default: all)
    and shut down after it; a Ray this process had already started (or
    connected to) is used as it is and left running. Each task's environment
    carries its TensorFlow thread counts. A task whose worker dies is retried
    by Ray (``max_retries``), then reported as that item's failure.
    ``fail_fast`` (and Ctrl-C) cancels every task not finished, running ones
    included; they are left out of the result.
    """

    parallel = True
    max_retries = 2

    def __init__(self, address: str | None = None, num_cpus: int | None = None, fail_fast: bool = False):
        self.address, self.num_cpus, self.fail_fast = address, num_cpus, fail_fast
        import_ray()  # fail before any work when the extra is missing

    def start(self) -> bool:
        """Start (or connect to) Ray unless this process already has; return whether this call did."""
        ray = import_ray()
        _raylet_messages_to_log(ray)
        if ray.is_initialized():
            return False
        ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
        return True

    def map(self, job: Callable[[str], T], items: Sequence[str],
            on_done: Callable[[Outcome[T]], None] | None = None) -> list[Outcome[T]]:
        if not items:
            return []
        ray = import_ray()
        started_here = self.start()
        try:
            task = ray.remote(run_job).options(num_cpus=CPUS_PER_TASK, max_retries=self.max_retries,
                                               runtime_env={"env_vars": thread_env(CPUS_PER_TASK)})
            shared = ray.put(job)  # shipped to the object store once, not once per task
            pending = {task.remote(shared, item): i for i, item in enumerate(items)}
            finished: dict[int, Outcome[T]] = {}
            try:
                while pending:
                    # all that are ready within 0.2 s: one call per batch, not one per task, over thousands of tasks
                    ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.2)
                    for ref in ready:
                        i = pending.pop(ref)
                        try:
                            outcome = ray.get(ref)
                        except Exception as exc:  # the worker died past its retries, or the cluster went away
                            outcome = _lost(items[i], exc)
                        finished[i] = outcome
                        if on_done is not None:
                            on_done(outcome)
                        if self.fail_fast and not outcome.ok:
                            return _in_order(items, finished)
                return _in_order(items, finished)
            finally:  # fail-fast or Ctrl-C: a cluster must not go on with the rest
                for ref in pending:
                    ray.cancel(ref)
        finally:
            if started_here:
                ray.shutdown()


def make_executor(kind: ExecutorKind | str = ExecutorKind.LOCAL, workers: int = 1, ray_address: str | None = None,
                  fail_fast: bool = False) -> SerialExecutor | PoolExecutor | RayExecutor:
    """Return the executor ``--executor/--workers/--ray-address`` ask for.

    local: serial for one worker, else a process pool; ray: Ray tasks, on a
    local Ray of ``workers`` CPUs (when more than one) unless an address is given.
    """
    chosen = ExecutorKind.parse(kind, "executor")
    if chosen is ExecutorKind.RAY:
        return RayExecutor(ray_address, num_cpus=workers if workers > 1 else None, fail_fast=fail_fast)
    if ray_address is not None:
        from forecast.errors import BadInputError

        raise BadInputError("--ray-address is for --executor ray")
    return PoolExecutor(workers, fail_fast) if workers > 1 else SerialExecutor(fail_fast)


def advancing(progress: ProgressReporter, on_done: Callable[[Outcome[T]], None] | None = None
              ) -> Callable[[Outcome[T]], None]:
    """Return an ``on_done`` that calls ``on_done``, then moves ``progress`` one item on.

    A failed item counts without a progress line of its own: ``on_done``
    reports it on its error line.
    """
    def done(outcome: Outcome[T]) -> None:
        if on_done is not None:
            on_done(outcome)
        progress.advance(outcome.item, failed=not outcome.ok)

    return done


def first_failure_code(outcomes: Sequence[Outcome]) -> int:
    """Return the exit code of the first failed outcome, or 0 when all worked."""
    return next((o.exit_code for o in outcomes if not o.ok), int(ExitCode.OK))


def exit_code_for(outcomes: Sequence[Outcome]) -> int:
    """The exit code of a command over several items, the same as ``run``'s.

    0 when every item worked; one item: that failure's own code; several:
    8 (PARTIAL) when some worked, 9 (ALL_FAILED) when none did.
    """
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return int(ExitCode.OK)
    if len(outcomes) == 1:
        return failed[0].exit_code
    return int(ExitCode.PARTIAL if len(failed) < len(outcomes) else ExitCode.ALL_FAILED)
