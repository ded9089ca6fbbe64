"""Interrupted sweeps resume bit for bit; Ctrl-C stops at once; concurrent writers lose nothing."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sweeps import start_sweep, write_spec

import seedvar
from seedvar.plan import expand, load_study
from seedvar.record import schema
from seedvar.record.store import Store


def study_spec(
    folder: Path, name: str, *, epochs: int = 6, replicates: int = 1, size: int = 40, base: int = 0
) -> Path:
    return write_spec(
        folder / f"{name}.toml", name, epochs=epochs, replicates=replicates, size=size, base=base
    )


def wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def child_runs(uri: str, name: str) -> list:
    store = Store(uri)
    return store.search(store.experiment_id(name), schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))


def reference_sha(tmp_path: Path, spec: Path, _template_store: Path) -> str:
    """The same config trained without interruption, in a store of its own."""
    import shutil

    folder = tmp_path / "reference"
    folder.mkdir()
    shutil.copy(_template_store, folder / "mlflow.db")
    result = seedvar.sweep(load_study(spec), tracking_uri=f"sqlite:///{folder}/mlflow.db", progress=False)
    return result.outcomes[0].weights_sha256


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path, store_uri, _template_store):
    spec = study_spec(tmp_path, "killed", epochs=8)
    checkpoints = Path(store_uri[len("sqlite:///") :]).parent / "checkpoints"
    proc = start_sweep(spec, store_uri, "--checkpoint-every", "0")
    try:
        wait_for(lambda: any(checkpoints.glob("*/*.pt")), what="the first checkpoint")
        time.sleep(0.15)  # well inside a later epoch
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
    assert outcome.weights_sha256 == reference_sha(tmp_path, spec, _template_store)
    client = MlflowClient(store_uri)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train.loss")]
    assert sorted(steps) == list(range(1, 9))  # earlier epochs kept, none logged twice
    assert int(client.get_run(run.info.run_id).data.tags[schema.TAG_RESUMED]) >= 1
    assert not list(checkpoints.glob("*/*.pt"))  # cleaned up once finished
    runs = child_runs(store_uri, "killed")
    assert [r.info.status for r in runs] == ["FINISHED"]


def test_ctrl_c_stops_at_once_marks_killed_and_resumes(tmp_path, store_uri, _template_store):
    spec = study_spec(tmp_path, "interrupted", epochs=40)
    checkpoints = Path(store_uri[len("sqlite:///") :]).parent / "checkpoints"
    proc = start_sweep(spec, store_uri, "--checkpoint-every", "0")
    wait_for(lambda: any(checkpoints.glob("*/*.pt")), what="the first checkpoint")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)  # once: a second Ctrl-C must never be needed
    output, _ = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10, "stopping took too long"
    assert proc.returncode == 130, output
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
    assert result.outcomes[0].weights_sha256 == reference_sha(tmp_path, spec, _template_store)


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
def test_jobs_give_the_same_runs_and_weights_as_one_at_a_time(tmp_path, store_uri, _template_store, jobs):
    import shutil

    spec = study_spec(tmp_path, "jobs", epochs=2, replicates=3, size=24)
    serial = seedvar.sweep(load_study(spec), tracking_uri=store_uri, progress=False, jobs=1)
    folder = tmp_path / "parallel"
    folder.mkdir()
    shutil.copy(_template_store, folder / "mlflow.db")
    parallel = seedvar.sweep(
        load_study(spec), tracking_uri=f"sqlite:///{folder}/mlflow.db", progress=False, jobs=jobs
    )
    assert {o.config_hash: o.weights_sha256 for o in serial.outcomes} == {
        o.config_hash: o.weights_sha256 for o in parallel.outcomes
    }
    assert {o.status for o in parallel.outcomes} == {"FINISHED"} and len(parallel.outcomes) == 3
