"""Interrupted sweeps resume bit for bit; Ctrl-C stops at once; concurrent writers lose nothing; a sqlite
store locked by another process is waited for, and past --retry-for the sweep stops with one line; a script
that starts worker processes without a main guard is told so in one line."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for
from mlflow import MlflowClient
from sweeps import start_sweep, write_spec

import seedvar
from seedvar.cli import main
from seedvar.plan import expand, load_study
from seedvar.record import schema
from seedvar.record.store import Store, local_db

pytestmark = pytest.mark.slow  # sweep processes killed, interrupted and raced: minutes


def study_spec(
    folder: Path, name: str, *, epochs: int = 6, replicates: int = 1, size: int = 40, base: int = 0
) -> Path:
    return write_spec(
        folder / f"{name}.toml", name, epochs=epochs, replicates=replicates, size=size, base=base
    )


def logged_epochs(uri: str, name: str) -> int:
    """How many epochs of the study's (first) trained model are in the store."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    runs = (
        client.search_runs([exp.experiment_id], schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))
        if exp
        else []
    )
    return len(client.get_metric_history(runs[0].info.run_id, "train.loss")) if runs else 0


def child_runs(uri: str, name: str) -> list:
    store = Store(uri)
    return store.search(store.experiment_id(name), schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))


def reference_sha(tmp_path: Path, spec: Path, swept_store) -> str:
    """The same config trained without interruption, in a store of its own."""
    _, result = swept_store(load_study(spec), tmp_path / "reference")  # one run: serial, as by default
    return result.outcomes[0].weights_sha256


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path, store_uri, swept_store):
    spec = study_spec(tmp_path, "killed", epochs=8)
    checkpoints = Path(store_uri[len("sqlite:///") :]).parent / "checkpoints"
    proc = start_sweep(spec, store_uri, "--checkpoint-every", "0")
    try:  # a checkpoint after every logged epoch: once the second epoch is logged, the first is saved
        wait_for(lambda: logged_epochs(store_uri, "killed") >= 2, what="the second epoch")
    finally:
        proc.kill()
        proc.wait()
    (run,) = child_runs(store_uri, "killed")
    assert run.info.status == "RUNNING"  # left dangling by the dead process...
    study = load_study(spec)
    out = tmp_path / "plan.txt"
    with out.open("w") as f:
        seedvar.sweep(study, tracking_uri=store_uri, dry_run=True, out=f)
    assert "resumable" in out.read_text()  # ...and recognised as such: no live owner, a checkpoint
    result = seedvar.sweep(study, tracking_uri=store_uri, progress=False, checkpoint_every=0)
    (outcome,) = result.outcomes
    assert outcome.status == "FINISHED" and outcome.run_id == run.info.run_id  # same MLflow run
    assert outcome.weights_sha256 == reference_sha(tmp_path, spec, swept_store)
    client = MlflowClient(store_uri)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train.loss")]
    assert sorted(steps) == list(range(1, 9))  # earlier epochs kept, none logged twice
    assert int(client.get_run(run.info.run_id).data.tags[schema.TAG_RESUMED]) >= 1
    assert not list(checkpoints.glob("*/*.pt"))  # cleaned up once finished
    runs = child_runs(store_uri, "killed")
    assert [r.info.status for r in runs] == ["FINISHED"]
    store = Store(store_uri)  # the dead sweep's parent run was closed by the next sweep, at once
    parents = store.search(
        store.experiment_id("killed"), schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP)
    )
    assert sorted(p.info.status for p in parents) == ["FAILED", "FINISHED"]
    (dead,) = [p for p in parents if p.info.status == "FAILED"]
    assert dead.data.tags[schema.TAG_FAILURE] == "the sweep's process stopped"
    assert not list(checkpoints.glob("*/sweep-*.lock"))  # each sweep's own lock is gone with it


def test_ctrl_c_stops_at_once_marks_killed_and_resumes(tmp_path, store_uri, swept_store):
    spec = study_spec(tmp_path, "interrupted", epochs=12)
    checkpoints = Path(store_uri[len("sqlite:///") :]).parent / "checkpoints"
    proc = start_sweep(spec, store_uri, "--checkpoint-every", "0")
    wait_for(lambda: any(checkpoints.glob("*/*.pt")), what="the first checkpoint")
    proc.send_signal(signal.SIGSTOP)  # held still while the store is read: the signal lands mid-training
    at_signal = logged_epochs(store_uri, "interrupted")
    proc.send_signal(signal.SIGINT)  # once: a second Ctrl-C must never be needed
    proc.send_signal(signal.SIGCONT)
    output, _ = proc.communicate(timeout=300)  # a safety net: a sweep that ignored the signal would train on
    assert proc.returncode == 130, output
    # at once: of 12 epochs, none begun after the signal is logged (the epoch whose metrics were being
    # written as it landed is written whole: interrupts wait for a database write to end)
    assert at_signal < 12 and logged_epochs(store_uri, "interrupted") <= at_signal + 1
    assert "Traceback" not in output and "rerun the same command to resume" in output
    store = Store(store_uri)
    exp = store.experiment_id("interrupted")
    (run,) = child_runs(store_uri, "interrupted")
    assert run.info.status == "KILLED"
    (parent,) = store.search(exp, schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP))
    assert parent.info.status == "KILLED"
    study = load_study(spec)
    result = seedvar.sweep(study, tracking_uri=store_uri, progress=False)
    assert result.outcomes[0].run_id == run.info.run_id and result.outcomes[0].status == "FINISHED"
    assert (
        schema.TAG_FAILURE not in MlflowClient(store_uri).get_run(run.info.run_id).data.tags
    )  # stale reason removed
    assert result.outcomes[0].weights_sha256 == reference_sha(tmp_path, spec, swept_store)


def test_a_ctrl_c_anywhere_in_a_store_write_leaves_it_whole_and_the_store_free(tmp_path):
    """Ctrl-C, or Ray's cancel (which simulates one), lands wherever the process is. Inside SQLAlchemy's
    statement execution it used to leave the connection holding sqlite's write lock, so every later write,
    the record of the stop included, waited out --retry-for: a Ray sweep given Ctrl-C hung in CI. Here the
    interrupt lands on each line SQLAlchemy's engine runs from a write's first INSERT or UPDATE (where
    the lock is taken) to its commit, one write per line."""
    import _thread

    import sqlalchemy.engine.base

    db = tmp_path / "mlflow.db"
    store = Store(f"sqlite:///{db}")
    run_id = store.start_run(store.experiment_id("interrupts"), "r", tags={})
    engine_file = sqlalchemy.engine.base.__file__

    def write_interrupted_at(line: int) -> int:
        """Write one tag, interrupting at the `line`-th engine line after the first write statement (0:
        never); how many such lines ran."""
        seen, writing = 0, False

        def on_line(frame, event, arg):
            nonlocal seen
            if event == "line" and writing:
                seen += 1
                if seen == line:
                    _thread.interrupt_main()
            return on_line

        def on_call(frame, event, arg):
            nonlocal writing
            if frame.f_code.co_name == "do_execute":  # the dialect hands a statement to sqlite3
                writing = writing or str(frame.f_locals.get("statement", "")).lstrip().upper().startswith(
                    ("INSERT", "UPDATE", "DELETE")
                )
            return on_line if frame.f_code.co_filename == engine_file else None

        sys.settrace(on_call)
        try:
            store.log(run_id, tags={"line": str(line)})
        finally:
            sys.settrace(None)
        return seen

    lines = write_interrupted_at(0)
    assert lines > 20  # the write does run through the engine after its first write statement
    for line in range(1, lines + 1):
        with pytest.raises(KeyboardInterrupt):  # the interrupt is not lost: it arrives after the write
            write_interrupted_at(line)
        other = sqlite3.connect(db, timeout=0.2)  # another writer gets the write lock at once
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise AssertionError(
                f"an interrupt at engine line {line} of {lines} left the store {exc}"
            ) from None
        finally:
            other.close()
        tags = dict(sqlite3.connect(db).execute("select key, value from tags where run_uuid = ?", (run_id,)))
        assert tags["line"] == str(line), f"an interrupt at engine line {line} of {lines} cut the write short"


def test_three_studies_write_one_store_at_once(tmp_path, store_uri):
    specs = [
        study_spec(tmp_path, f"concurrent{i}", epochs=2, replicates=2, size=24, base=i) for i in range(3)
    ]
    procs = [start_sweep(s, store_uri, "--jobs", "1") for s in specs]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    client = MlflowClient(store_uri)
    for spec in specs:
        study = load_study(spec)
        runs = child_runs(store_uri, study.name)
        assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
        for r in runs:
            assert len(client.get_metric_history(r.info.run_id, "train.loss")) == 2
            assert len(client.get_metric_history(r.info.run_id, "test.train.acc")) == 3
            assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {
                "predictions.npz",
                "config.json",
            }
        assert {r.data.tags[schema.TAG_CONFIG_HASH] for r in runs} == {
            c.config_hash for c in expand(study, "cpu")
        }


def test_two_sweeps_of_one_study_never_finish_a_config_twice(tmp_path, store_uri):
    spec = study_spec(tmp_path, "race", epochs=2, replicates=3, size=24)
    procs = [start_sweep(spec, store_uri, "--jobs", "1") for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    finished = [r for r in child_runs(store_uri, "race") if r.info.status == "FINISHED"]
    hashes = [r.data.tags[schema.TAG_CONFIG_HASH] for r in finished]
    assert len(hashes) == 3 and len(set(hashes)) == 3


@pytest.mark.parametrize("jobs", [2])
def test_jobs_give_the_same_runs_and_weights_as_one_at_a_time(tmp_path, store_uri, swept_store, jobs):
    spec = study_spec(tmp_path, "jobs", epochs=2, replicates=3, size=24)
    serial = seedvar.sweep(load_study(spec), tracking_uri=store_uri, progress=False, jobs=1)
    _, parallel = swept_store(load_study(spec), tmp_path / "parallel", jobs=jobs)
    assert {o.config_hash: o.weights_sha256 for o in serial.outcomes} == {
        o.config_hash: o.weights_sha256 for o in parallel.outcomes
    }
    assert {o.status for o in parallel.outcomes} == {"FINISHED"} and len(parallel.outcomes) == 3


UNGUARDED_SCRIPT = """
import seedvar

seedvar.sweep({spec!r}, tracking_uri={uri!r}, jobs=2, progress=False)  # no `if __name__ == "__main__":`
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_is_told_so_in_one_line(tmp_path, store_uri):
    """Each spawned worker imports the script again and would start a sweep of its own, which multiprocessing
    refuses with a long traceback per worker. The workers end quietly instead; the script's own process
    raises one error whose one line says what to change, and no run was started."""
    spec = study_spec(tmp_path, "unguarded", epochs=1, replicates=2, size=24)
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT.format(spec=str(spec), uri=store_uri))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("Traceback") == 1  # the script's own, as for any error it does not catch
    assert "bootstrapping phase" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("seedvar.errors.UserError: ") and 'if __name__ == "__main__":' in last
    assert child_runs(store_uri, "unguarded") == []
    store = Store(store_uri)
    (parent,) = store.search(
        store.experiment_id("unguarded"), schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP)
    )
    assert parent.info.status == "FAILED"


# Another process holding the store's write lock: BEGIN EXCLUSIVE, held until the test writes a line.
LOCKER = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
"""


class WriteLock:
    """A second process holding the sqlite store's write lock until release()."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
        assert self.proc.wait(timeout=60) == 0


def lock_after_last_epoch(monkeypatch, db: Path, epochs: int, release_on_error: bool) -> dict:
    """Take the store's write lock once the run's last epoch is logged (the results then wait behind it);
    with release_on_error, let go once a write has met the lock (sqlite gives up after MLflow's own
    20-s busy wait with "database is locked"): what is left is seedvar's own retry."""
    state: dict = {"met": 0}
    log_batch = MlflowClient.log_batch

    def spy(self, run_id, *args, **kwargs):
        try:
            done = log_batch(self, run_id, *args, **kwargs)
        except Exception as exc:
            if "database is locked" in str(exc) and "lock" in state:
                state["met"] += 1
                if release_on_error:
                    state.pop("lock").release()
            raise
        metrics = kwargs.get("metrics") or ()
        if "lock" not in state and any(m.key == "train.loss" and m.step == epochs for m in metrics):
            state["lock"] = WriteLock(db)
            # WAL: a writer holding the lock blocks no reader (without WAL this read would wait, then fail)
            assert MlflowClient(f"sqlite:///{db}").get_run(run_id).info.status == "RUNNING"
        return done

    monkeypatch.setattr(MlflowClient, "log_batch", spy)
    return state


@pytest.mark.slow
def test_a_write_lock_held_past_sqlites_own_wait_is_retried(tmp_path, store_uri, swept_store, monkeypatch):
    """Several sweeps (or a report, or a user's script) share one sqlite store: a write lock held longer than
    sqlite's busy wait makes a call fail with "database is locked", which the store retries with backoff."""
    db = local_db(store_uri)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    spec = study_spec(tmp_path, "locked", epochs=2, size=24)
    state = lock_after_last_epoch(monkeypatch, db, epochs=2, release_on_error=True)
    result = seedvar.sweep(load_study(spec), tracking_uri=store_uri, progress=False, retry_for=120, jobs=1)
    monkeypatch.undo()
    assert state["met"] >= 1  # a write did meet the lock and fail: the retry is what finished the run
    (outcome,) = result.outcomes
    assert outcome.status == "FINISHED", outcome.reason
    client = MlflowClient(store_uri)
    assert [m.step for m in client.get_metric_history(outcome.run_id, "train.loss")] == [1, 2]
    assert len(client.get_metric_history(outcome.run_id, "test.train.acc")) == 3
    assert outcome.weights_sha256 == reference_sha(tmp_path, spec, swept_store)


@pytest.mark.slow
def test_a_write_lock_held_past_retry_for_stops_the_sweep_and_a_rerun_completes(
    tmp_path, store_uri, monkeypatch, capsys
):
    db = local_db(store_uri)
    spec = study_spec(tmp_path, "stuck", epochs=2, replicates=2, size=24)
    state = lock_after_last_epoch(monkeypatch, db, epochs=2, release_on_error=False)
    argv = ["sweep", str(spec), "--tracking-uri", store_uri, "--no-progress", "--jobs", "1"]
    code = main([*argv, "--retry-for", "1"])  # in this process, where the lock is taken
    state.pop("lock").release()
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert code == 2 and state["met"] >= 1, (out, err)
    assert err.startswith("seedvar: error: the sqlite store ") and err.count("\n") == 1, err
    assert "stayed locked by other writers for 1 s" in err and "seedvar server" in err
    assert "FAILED" not in out, out
    (interrupted,) = child_runs(store_uri, "stuck")
    assert interrupted.info.status == "RUNNING"  # nothing recorded half: resumable
    with (tmp_path / "plan.txt").open("w") as f:
        seedvar.sweep(load_study(spec), tracking_uri=store_uri, dry_run=True, out=f)
    assert "2 runs: 1 pending, 1 resumable" in (tmp_path / "plan.txt").read_text()
    result = seedvar.sweep(load_study(spec), tracking_uri=store_uri, progress=False, jobs=1)
    assert sorted(o.status for o in result.outcomes) == ["FINISHED", "FINISHED"]
    assert interrupted.info.run_id in {o.run_id for o in result.outcomes}  # resumed in the same run
    client = MlflowClient(store_uri)
    for run in child_runs(store_uri, "stuck"):
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train.loss")] == [1, 2]
        assert len(client.get_metric_history(run.info.run_id, "test.train.acc")) == 3
    store = Store(store_uri)
    parents = store.search(
        store.experiment_id("stuck"), schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP)
    )
    assert sorted(p.info.status for p in parents) == ["FAILED", "FINISHED"]  # the stopped sweep's closed
