"""`--executor ray` on CPUs: the same weights as the local executor, a
worker killed mid-run retried by Ray and resumed, Ctrl-C that cancels the tasks, and a local sqlite
store refused on a cluster of several hosts before anything is written. (A sweep across two Ray
nodes, which needs a tracking server, is in test_server.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sweeps import expected_n, start_sweep, write_spec

import seedvar
from seedvar.errors import UserError
from seedvar.plan import load_study
from seedvar.record import schema

ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
from ray.cluster_utils import Cluster  # noqa: E402

from seedvar.engine.executors import ray as ray_executor  # noqa: E402

pytestmark = pytest.mark.slow

RAY = '[execution]\nexecutor = "ray"\n'


def spec(folder: Path, name: str, epochs: int = 2, replicates: int = 2) -> Path:
    return write_spec(folder / f"{name}.toml", name, epochs=epochs, replicates=replicates, extra=RAY)


def shas(result) -> dict[str, str]:
    return {o.config_hash: o.weights_sha256 for o in result.outcomes}


def test_local_sqlite_refused_on_a_cluster_of_two_hosts(tmp_path, monkeypatch):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    real_hosts = ray_executor.hosts
    # tests keep every Ray node on loopback (conftest), so here each node stands for a host, as each
    # node of a real cluster is one machine
    monkeypatch.setattr(ray_executor, "hosts", lambda: {n["NodeID"] for n in ray.nodes() if n.get("Alive")})
    db = tmp_path / "mlruns" / "mlflow.db"
    try:
        ray.init(address=cluster.address)  # joined here, so the sweep leaves the instance running
        assert real_hosts() == {"127.0.0.1"}  # the test cluster stays on loopback
        study = load_study(spec(tmp_path, "hosts"), {"execution.ray_address": cluster.address})
        with pytest.raises(UserError, match=r"spans 2 hosts .* start a tracking server"):
            seedvar.sweep(study, tracking_uri=f"sqlite:///{db}", progress=False)
        assert not db.parent.exists()  # refused before the store was touched
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_two_stage_sweep_through_a_fresh_local_instance_trains_its_pilots_n(tmp_path, store_uri):
    """Both stages go through the Ray executor; n is the formula's from the pilot runs in the store. Without
    an address the sweep starts a Ray instance of its own, not the cluster last started on this machine,
    and leaves that cluster running."""
    # a cluster started on this machine (as `ray start` would) records itself where ray.init() looks
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        result = seedvar.sweep(
            spec(tmp_path, "stages", epochs=1, replicates=3),
            tracking_uri=store_uri,
            progress=False,
            target_ci=12.0,
            max_replicates=6,
        )
        n, _ = expected_n(store_uri, "stages", 12.0, 6)
        assert [o.status for o in result.outcomes] == ["FINISHED"] * n
        tags = [MlflowClient(store_uri).get_run(o.run_id).data.tags for o in result.outcomes]
        assert sorted(t[schema.TAG_REPLICATE] for t in tags) == [str(r) for r in range(n)]
        nodes = {t[schema.TAG_RAY_NODE] for t in tags}
        assert nodes and cluster.head_node.node_id not in nodes
        assert cluster.head_node.remaining_processes_alive()  # the sweep's own instance stopped, not this one
    finally:
        ray.shutdown()
        cluster.shutdown()


def wait_for_checkpoint(folder: Path, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 300
    while not (found := list(folder.glob("checkpoints/*/*.pt"))):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.1)
    return found[0]


def test_worker_killed_mid_run_is_retried_and_resumes_the_same_run(tmp_path, store_uri, swept_store):
    path = spec(tmp_path, "killed", epochs=15, replicates=2)
    folder = Path(store_uri[len("sqlite:///") :]).parent
    proc = start_sweep(path, store_uri, "--checkpoint-every", "0")
    ckpt = wait_for_checkpoint(folder, proc)
    pid = int(ckpt.with_suffix(".lock").read_text().split()[1])  # the Ray worker that claimed the run
    os.kill(pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    client = MlflowClient(store_uri)
    exp = client.get_experiment_by_name("killed")
    runs = client.search_runs([exp.experiment_id], schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]  # each config once
    resumed = [r for r in runs if r.data.tags.get(schema.TAG_RESUMED)]
    assert len(resumed) == 1
    steps = [m.step for m in client.get_metric_history(resumed[0].info.run_id, "train.loss")]
    assert sorted(steps) == list(range(1, 16))
    _, reference = swept_store(load_study(path, {"execution.executor": "local"}), tmp_path / "reference")
    assert {r.data.tags[schema.TAG_CONFIG_HASH]: r.data.tags[schema.TAG_WEIGHTS] for r in runs} == shas(
        reference
    )


def test_ctrl_c_cancels_the_ray_tasks_and_a_rerun_resumes(tmp_path, store_uri):
    path = spec(tmp_path, "cancelled", epochs=200, replicates=1)  # long enough that Ctrl-C lands mid-training
    folder = Path(store_uri[len("sqlite:///") :]).parent
    proc = start_sweep(path, store_uri, "--checkpoint-every", "0")
    wait_for_checkpoint(folder, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    client = MlflowClient(store_uri)
    exp = client.get_experiment_by_name("cancelled")
    (run,) = client.search_runs([exp.experiment_id], schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))
    assert run.info.status == "KILLED"
    (parent,) = client.search_runs([exp.experiment_id], schema.tag_filter(schema.TAG_KIND, schema.KIND_SWEEP))
    assert parent.info.status == "KILLED"
    # resumed by the local executor: where a run runs is not part of its config
    again = seedvar.sweep(
        load_study(path, {"execution.executor": "local"}), tracking_uri=store_uri, progress=False
    )
    assert [(o.status, o.run_id) for o in again.outcomes] == [("FINISHED", run.info.run_id)]
