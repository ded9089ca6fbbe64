"""Each lifecycle promise of the README's Reliability section, injected: SIGTERM to a sweep (one run at a
time and --jobs 2), `kill -9` of a --jobs 2 sweep, a local checkpoint write killed midway, two claims
forced into a race. A signal is sent while the sweep is stopped (SIGSTOP) right after a checkpoint, so it
lands mid-training whatever the machine's load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import wait_for
from sweeps import start_sweep, write_spec

import seedvar
from seedvar.plan import expand, load_study
from seedvar.record import schema
from seedvar.record.checkpoint_store import LocalCheckpoints
from seedvar.record.claims import RunClaims, claims_for
from seedvar.record.reader import child_runs
from seedvar.record.recorder import RunRecorder
from seedvar.record.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    """Two replicates of a small synthetic study, 14 epochs each (long enough for two workers to overlap)."""
    folder = tmp_path_factory.mktemp("lifecycle")
    return write_spec(folder / "life.toml", "life", epochs=14, replicates=2, size=36)


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory, swept_store) -> dict[str, str]:
    """Each config's weights sha256, trained without interruption in a store of its own."""
    _, result = swept_store(load_study(spec), tmp_path_factory.mktemp("reference"))
    return {o.config_hash: o.weights_sha256 for o in result.outcomes}


@pytest.fixture(scope="module")
def keys(spec) -> set[str]:
    """The study's config hashes: the names of its checkpoints and claim locks."""
    return {c.config_hash for c in expand(load_study(spec), "cpu")}


def checkpoints(uri: str) -> Path:
    """The folder beside a sqlite store that holds its checkpoints and claim locks."""
    return Path(uri[len("sqlite:///") :]).parent / "checkpoints"


def saved(uri: str) -> set[str]:
    """The configs with an epoch checkpoint beside the store."""
    return {p.stem for p in checkpoints(uri).glob("*/*.pt")}


def family(pid: int) -> list[int]:
    """A process and its worker processes (Linux's /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return [pid, *kids]


def freeze(proc: subprocess.Popen, ready) -> list[int]:
    """Stop the sweep and its workers (SIGSTOP) once `ready()` holds while they are stopped: then whatever
    signal follows lands mid-training, however loaded the machine."""
    while True:
        wait_for(ready, "the runs to checkpoint")
        pids = family(proc.pid)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        if ready():
            return pids
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def runs(uri: str) -> list:
    store = Store(uri, create=False)
    return child_runs(store, store.experiment_id("life", create=False))


def claimed(uri: str, keys: set[str]) -> int:
    """How many of the configs `keys` a process holds the claim of now: their lock files' flocks in
    Linux's /proc/locks (reading it takes no lock and touches no store, even while the sweep is stopped)."""
    held = {
        line.split()[5].rsplit(":", 1)[1]
        for line in Path("/proc/locks").read_text().splitlines()
        if " FLOCK " in line and "->" not in line
    }
    return sum(str(p.stat().st_ino) in held for p in checkpoints(uri).glob("*/*.lock") if p.stem in keys)


def training(uri: str, keys: set[str], jobs: int) -> bool:
    """Time to interrupt: a run has checkpointed and `jobs` configs are held by their workers. (Waiting for
    every run's first checkpoint raced a worker that started late on a loaded machine against the end of
    the other run.)"""
    return bool(saved(uri)) and claimed(uri, keys) >= jobs


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_stops_the_sweep_marks_it_killed_and_a_rerun_resumes(spec, keys, reference, store_uri, jobs):
    proc = start_sweep(spec, store_uri, "--checkpoint-every", "0", "--jobs", str(jobs))
    pids = freeze(proc, lambda: training(store_uri, keys, jobs))
    checkpointed_now = saved(store_uri)
    proc.send_signal(signal.SIGTERM)
    for pid in pids:
        os.kill(pid, signal.SIGCONT)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, output
    assert "stopped (SIGTERM); rerun the same command to resume" in output and "Traceback" not in output
    stopped = runs(store_uri)
    assert sorted(r.status for r in stopped) == ["KILLED"] * jobs  # every run that trained, not left RUNNING
    store = Store(store_uri, create=False)
    (parent,) = store.search(
        store.experiment_id("life"), schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP)
    )
    assert parent.info.status == "KILLED"
    result = seedvar.sweep(load_study(spec), tracking_uri=store_uri, progress=False, jobs=1)  # resumed here
    resumed = {o.run_id for o in result.outcomes}
    # a run stopped with a checkpoint goes on in the same MLflow run; one stopped before its first checkpoint
    # has nothing to resume and starts again, in its own MLflow run too (no KILLED twin is left)
    assert checkpointed_now and {r.run_id for r in stopped} <= resumed
    assert sorted(r.status for r in runs(store_uri)) == ["FINISHED", "FINISHED"]
    assert {o.config_hash: o.weights_sha256 for o in result.outcomes} == reference


def test_kill_9_of_a_two_job_sweep_resumes_both_runs_with_the_same_weights(spec, keys, reference, store_uri):
    proc = start_sweep(spec, store_uri, "--checkpoint-every", "0", "--jobs", "2")
    freeze(proc, lambda: training(store_uri, keys, 2))
    checkpointed_now = saved(store_uri)
    proc.kill()  # the sweep's process alone, as an out-of-memory kill or `kill -9 PID` would
    proc.wait()
    # its workers went with it (nothing trains on as an orphan): the claims are free at once
    store = Store(store_uri, create=False)
    exp = store.experiment_id("life", create=False)
    claims = claims_for(store, exp)
    wait_for(lambda: not any(claims.is_claimed(key, []) for key in keys), "the workers to die")
    dead = runs(store_uri)
    assert sorted(r.status for r in dead) == ["RUNNING", "RUNNING"]
    result = seedvar.sweep(load_study(spec), tracking_uri=store_uri, progress=False, jobs=1)
    assert sorted(o.status for o in result.outcomes) == ["FINISHED", "FINISHED"]
    assert checkpointed_now and {r.run_id for r in dead} == {o.run_id for o in result.outcomes}
    assert {o.config_hash: o.weights_sha256 for o in result.outcomes} == reference


WRITER = """
import os, sys, time
from pathlib import Path
from seedvar.record.checkpoint_store import LocalCheckpoints
store = LocalCheckpoints(Path(sys.argv[1]))
store.put("cfg", "run", b"epoch 3" * 1000)
fsync = os.fsync
def slow_disk(fd):  # the new checkpoint's bytes are written, not yet on disk nor in place
    print("writing", flush=True)
    time.sleep(60)
    fsync(fd)
os.fsync = slow_disk
store.put("cfg", "run", b"epoch 4" * 1000)
"""


def test_a_local_checkpoint_write_killed_midway_leaves_the_previous_one_readable(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    store = LocalCheckpoints(tmp_path)
    assert store.get("cfg") == b"epoch 3" * 1000  # the previous checkpoint, whole
    assert list(tmp_path.glob("cfg.tmp*"))  # the half-written one never took its place
    store.put("cfg", "run", b"epoch 5")
    assert store.get("cfg") == b"epoch 5"


def test_two_claims_forced_into_a_race_the_earlier_wins_and_the_other_stands_down(spec, store_uri):
    """Two sweeps (on two hosts of a tracking server) claim one config at the same moment: each creates its
    run, then both stake their claim behind a barrier. The run started first wins; the other is removed."""
    cfg = expand(load_study(spec), "cpu")[0]
    setup = Store(store_uri)
    exp = setup.experiment_id("life")
    barrier = threading.Barrier(2)
    results: dict[str, tuple[str, bool]] = {}

    def claim(sweep: str) -> None:
        store = Store(store_uri)
        claim = RunClaims(store, exp, sweep, timeout=120.0).claim(cfg.config_hash).__enter__()
        recorder = RunRecorder.start(store, cfg, exp, parent_id="")
        barrier.wait()
        won = claim.contest(recorder.run_id)
        if not won:
            recorder.stand_down()
        results[sweep] = (recorder.run_id, won)

    threads = [threading.Thread(target=claim, args=(name,)) for name in ("host-a", "host-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(won for _, won in results.values()) == [False, True]
    winner = next(run_id for run_id, won in results.values() if won)
    left = child_runs(setup, exp, cfg.config_hash)
    assert [r.run_id for r in left] == [winner]  # the loser's run is gone
    created = {run_id: setup.get_run(run_id).info.start_time for run_id, _ in results.values()}
    assert min(created, key=lambda r: (created[r], r)) == winner  # the earlier one
