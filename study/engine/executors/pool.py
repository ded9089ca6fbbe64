"""Up to N runs at once, each in its own local worker process logging its own child run (the local
executor with several workers: `--jobs N`, or `--runs-per-gpu` slots per GPU).

Workers take configs from a queue and send progress events back; a run's results do not depend on
which worker ran it or how many ran beside it (its thread count is part of its config). On a machine
with GPUs, `--runs-per-gpu N` gives each GPU N worker slots: a worker sees only its GPU
(CUDA_VISIBLE_DEVICES), so N small runs share one GPU without Ray.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import queue
import signal
import sys
from typing import Any

from seedvar.engine.executors import Job
from seedvar.engine.progress import Progress
from seedvar.errors import UserError
from seedvar.plan import RunConfig
from seedvar.results import RunOutcome, Status

# A spawned worker imports the user's script again before it runs anything (as `__mp_main__`). A script that
# calls seedvar.sweep at its top level, without `if __name__ == "__main__":`, would start a sweep in every
# worker, and each would print multiprocessing's traceback; instead the worker ends at once with this exit
# status, and the sweep's own process says why in one line.
UNGUARDED_EXIT = 86
UNGUARDED = (
    "the script that called seedvar.sweep runs again in each worker process (jobs > 1 spawns them), and it "
    'calls seedvar.sweep at its top level: put that call under `if __name__ == "__main__":` (or use jobs=1)'
)


def refuse_in_worker_startup() -> None:
    """End this process quietly (UNGUARDED_EXIT) when it is a worker still importing the user's script
    (multiprocessing's own test of the same thing: the process is inheriting its parent's main module)."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        sys.exit(UNGUARDED_EXIT)


def _stop(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop request is enough
    raise KeyboardInterrupt


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def _die_with(parent: int) -> None:
    """A worker goes when the sweep's process goes, even by SIGKILL (the kernel sends it SIGKILL too), as
    a sweep killed whole would: an orphan would go on training a run the rerun then cannot claim. Linux
    only; elsewhere a killed sweep leaves its workers to finish their runs."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl(
            PR_SET_PDEATHSIG, signal.SIGKILL
        )
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker(worker: int, job: Job, tasks: Any, events: Any, gpu: int | None, parent: int) -> None:
    # Ctrl-C reaches the whole process group; the main process alone decides, and stops workers with
    # SIGTERM, so each worker is interrupted exactly once and can mark its run KILLED.
    _die_with(parent)
    if gpu is not None:  # before anything starts CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while (cfg := tasks.get()) is not None:
            events.put(("claim", worker, {"name": cfg.run_name}))
            outcome = job(cfg, lambda kind, payload: events.put((kind, worker, payload)))
            events.put(("done", worker, {"outcome": outcome}))
    except KeyboardInterrupt:
        pass  # the run already marked itself KILLED; the main process reports the interruption
    except Exception as exc:  # a worker that cannot go on (its store, imports) must not lose runs silently
        events.put(("error", worker, {"reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}))
    finally:
        events.close()
        events.join_thread()  # flush what this worker said before it goes


def run_parallel(
    pending: list[RunConfig], job: Job, jobs: int, bars: Progress, gpus: list[int] | None = None
) -> list[RunOutcome]:
    """Run the job for each config in `jobs` spawned workers (worker i on GPU gpus[i]), relaying their
    progress to `bars`."""
    mp = multiprocessing.get_context("spawn")
    tasks, events = mp.Queue(), mp.Queue()
    for cfg in pending:
        tasks.put(cfg)
    jobs = min(jobs, len(pending))
    for _ in range(jobs):
        tasks.put(None)
    procs = [
        mp.Process(
            target=_worker,
            args=(i, job, tasks, events, gpus[i] if gpus else None, os.getpid()),
            name=f"seedvar-job{i}",
        )
        for i in range(jobs)
    ]
    for p in procs:
        p.start()
    current: dict[int, str] = {}
    errors: list[str] = []
    outcomes: list[RunOutcome] = []
    try:
        while len(outcomes) < len(pending):
            try:
                kind, worker, payload = events.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if kind == "claim":
                current[worker] = payload["name"]
            elif kind == "error":
                errors.append(f"worker {worker}: {payload['reason']}")
            elif kind == "done":
                current.pop(worker, None)
                outcomes.append(payload["outcome"])
                bars.finished(payload["outcome"])
            else:
                bars.event(worker, kind, payload)
        if not outcomes and not current and all(p.exitcode == UNGUARDED_EXIT for p in procs):
            raise UserError(UNGUARDED)
        for worker, name in current.items():  # a worker that died mid-run (killed, out of memory)
            outcomes.append(
                RunOutcome("", name, Status.FAILED, reason=f"worker process {worker} died during the run")
            )
        reported = {o.run_name for o in outcomes}
        reason = "; ".join(errors) or "no worker was left to run it"
        for cfg in pending:  # never claimed: every worker failed before reaching it
            if cfg.run_name not in reported:
                outcomes.append(RunOutcome(cfg.config_hash, cfg.run_name, Status.FAILED, reason=reason))
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: the worker marks its run KILLED and exits
        for p in procs:
            p.join(timeout=30)
        raise
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        with contextlib.suppress(Exception):
            events.close()
            tasks.close()
    return outcomes
