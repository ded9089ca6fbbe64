"""Many writers, many hosts: sweeps through `seedvar server` on a real PostgreSQL, with nothing shared
but the server. Each sweep runs in its own working folder, as on another host; the server is killed and
restarted under a running sweep; a run killed on one "host" resumes on another from the server-side
checkpoint; a server beyond loopback lets nobody in without credentials."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from faults import Fault, FaultyProxy
from mlflow import MlflowClient
from sweeps import expected_n, start_sweep, write_spec

import seedvar
from seedvar.plan import expand, load_study
from seedvar.record import schema
from seedvar.record.reader import read_runs
from seedvar.record.store import Store

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
pytestmark = pytest.mark.slow


def postgres_module():
    spec = importlib.util.spec_from_file_location("bench_postgres", BENCH / "_postgres.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below pid, from /proc (the server's uvicorn workers included)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


class Server:
    """`seedvar server` as a user starts it, in its own folder."""

    def __init__(self, folder: Path, backend: str, port: int, *extra: str, env: dict | None = None) -> None:
        self.folder, self.backend, self.port, self.extra = folder, backend, port, extra
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.uri = f"http://127.0.0.1:{port}"
        self.start()

    def start(self) -> None:
        self.log = (self.folder / "server.log").open("a")
        cmd = [sys.executable, "-m", "seedvar", "server", "--backend-store-uri", self.backend]
        cmd += [
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--port",
            str(self.port),
            *self.extra,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.folder
        )
        deadline = time.monotonic() + 180
        while "tracking server for seedvar" not in (self.folder / "server.log").read_text():
            assert self.proc.poll() is None, (self.folder / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL to the server and every process it started: a crash, not a clean stop."""
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, as `kill` or systemd sends it; the whole process tree must go."""
        self.tree = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def postgres():
    pg = postgres_module()
    if pg.bin_dir() is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: pip install -e '.[server]'")
    cluster = pg.Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    srv = Server(folder, postgres.create_db("seedvar"), postgres_module().free_port())
    yield srv
    srv.stop()


def spec_in(folder: Path, name: str, *, epochs: int = 2, replicates: int = 2, base: int = 0) -> Path:
    """A study spec in its own working folder: a stand-in for another host."""
    return write_spec(folder / "study.toml", name, epochs=epochs, replicates=replicates, base=base)


def sweep(spec: Path, uri: str, *extra: str) -> subprocess.Popen:
    return start_sweep(spec, uri, "--jobs", "1", *extra, cwd=spec.parent)


def runs_of(uri: str, name: str, kind: str = schema.KIND_RUN) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id], schema.tag_filter(schema.TAG_KIND, kind))


def assert_complete(uri: str, name: str, configs: list, epochs: int, passes: int = 3) -> None:
    """Every config FINISHED exactly once, with every epoch and every test pass logged once."""
    client = MlflowClient(uri)
    finished = [r for r in runs_of(uri, name) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags[schema.TAG_CONFIG_HASH] for r in finished) == sorted(
        c.config_hash for c in configs
    )
    for r in finished:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "train.loss")]
        assert sorted(steps) == list(range(1, epochs + 1)), steps
        assert len(client.get_metric_history(r.info.run_id, "test.train.acc")) == passes
        assert schema.ARTIFACT_PREDICTIONS in {a.path for a in client.list_artifacts(r.info.run_id)}
        assert schema.TAG_CHECKPOINT not in r.data.tags  # cleaned up once finished


def test_writers_racing_to_insert_one_row_all_succeed(server):
    """MLflow reads, then inserts, so writers on several hosts may insert one row together: sweeps starting
    at once write the same new experiment tags, and runs starting at once log the same dataset (one row
    per name and digest in an experiment). The loser's write must not stop its sweep (both did, in CI)."""
    writers = 8
    stores = [Store(server.uri) for _ in range(writers)]
    tags = {f"seedvar.race.{k}": "same" for k in range(12)}
    errors: list[Exception] = []

    def at_once(work: list) -> None:
        start = threading.Barrier(len(work))

        def go(fn, *args) -> None:
            start.wait()
            try:
                fn(*args)
            except Exception as exc:  # collected for the assert
                errors.append(exc)

        threads = [threading.Thread(target=go, args=w) for w in work]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, [str(e).splitlines()[0][:200] for e in errors]

    for attempt in range(3):
        exp_id = stores[0].experiment_id(f"tag-race-{attempt}")
        at_once([(st.set_experiment_tags, exp_id, tags) for st in stores])
        assert stores[0].experiment_tags(exp_id).items() >= tags.items()
        runs = [st.start_run(exp_id, f"run-{i}", {}) for i, st in enumerate(stores)]
        data = ("scene", f"digest{attempt}", "synthetic", {"bands": 20}, "train")
        at_once([(st.log_dataset, run, *data) for st, run in zip(stores, runs, strict=True)])
        for run in runs:
            (given,) = MlflowClient(server.uri).get_run(run).inputs.dataset_inputs
            assert given.dataset.digest == f"digest{attempt}"


def assert_bulk_reads_match(uri: str, name: str) -> None:
    """Through the server's HTTP API, as a report reads: artifacts straight from each run's artifact URI
    (in parallel) and a metric's history of many runs in one request give what the one-by-one calls give."""
    store = Store(uri, create=False)
    runs = read_runs(
        store, store.experiment_id(name, create=False), schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN)
    )
    ids = [r.run_id for r in runs]
    assert len(ids) == 4 and all(r.artifact_uri.startswith("mlflow-artifacts:") for r in runs)
    for key in ("train.loss", "train.acc"):
        bulk = store.metric_histories(ids, key)
        assert bulk == {i: store.metric_history(i, key) for i in ids} and all(
            len(v) == 2 for v in bulk.values()
        )
    blobs = store.read_artifacts({r.run_id: r.artifact_uri for r in runs}, schema.ARTIFACT_PREDICTIONS)
    client = MlflowClient(uri)
    for r in runs:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(r.run_id, schema.ARTIFACT_PREDICTIONS, tmp)
            assert blobs[r.run_id] == Path(path).read_bytes()


def test_three_hosts_sweep_one_study_at_once(server, tmp_path):
    specs = [spec_in(tmp_path / f"host{i}", "team", replicates=4) for i in range(3)]
    procs = [sweep(s, server.uri) for s in specs]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    configs = expand(load_study(specs[0]), "cpu")
    assert_complete(server.uri, "team", configs, epochs=2)
    assert not [r for r in runs_of(server.uri, "team") if r.info.status != "FINISHED"]  # no leftovers
    parents = runs_of(server.uri, "team", schema.KIND_SWEEP)
    assert {p.info.status for p in parents} == {"FINISHED"} and len(parents) <= 3
    # three sweeps ended at once: still one run for the condition, the parent of every trained model
    (condition,) = runs_of(server.uri, "team", schema.KIND_CONDITION)
    assert all(r.data.tags[schema.TAG_PARENT] == condition.info.run_id for r in runs_of(server.uri, "team"))
    assert condition.data.metrics["seeds.eval.runs"] == 4
    assert not any((tmp_path / f"host{i}" / "mlruns").exists() for i in range(3))  # nothing local
    assert_bulk_reads_match(server.uri, "team")  # the report's bulk reads, on runs three hosts wrote


def test_two_hosts_agree_on_a_two_stage_sweep_through_the_server(server, tmp_path):
    """n is a function of the pilot runs in the store: both hosts decide it alike, each replicate trains once."""
    specs = [spec_in(tmp_path / f"host{i}", "stages", epochs=1, replicates=3) for i in range(2)]
    procs = [sweep(s, server.uri, "--target-ci", "12", "--max-replicates", "6") for s in specs]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    n, _ = expected_n(server.uri, "stages", 12.0, 6)
    assert_complete(
        server.uri, "stages", expand(load_study(specs[0], {"seeds.replicates": n}), "cpu"), epochs=1
    )
    for text in outputs:
        (decided,) = [line for line in text.splitlines() if line.startswith("hybridsn: pilot 3/3")]
        assert f"n = {n}" in decided, text


def test_server_killed_and_restarted_mid_sweep_loses_nothing(server, tmp_path):
    spec = spec_in(tmp_path / "host", "restart", epochs=4, replicates=3)
    proc = sweep(spec, server.uri, "--checkpoint-every", "0")
    client = MlflowClient(server.uri)
    deadline = time.monotonic() + 300
    while True:  # kill the server once the second run is training
        exp = client.get_experiment_by_name("restart")
        runs = client.search_runs([exp.experiment_id]) if exp else []
        if sum(r.data.tags.get(schema.TAG_KIND) == schema.KIND_RUN for r in runs) >= 2:
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.2)
    server.kill()
    time.sleep(3)  # the sweep meets a dead server for a while
    server.start()
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert_complete(server.uri, "restart", expand(load_study(spec), "cpu"), epochs=4)


def test_run_killed_on_one_host_resumes_on_another_from_the_server(server, tmp_path):
    host_a = spec_in(tmp_path / "a", "moving", epochs=20, replicates=1)
    proc = sweep(host_a, server.uri, "--checkpoint-every", "0", "--claim-timeout", "4")
    client = MlflowClient(server.uri)
    deadline = time.monotonic() + 300
    while True:  # a checkpoint is in the server's artifact store
        exp = client.get_experiment_by_name("moving")
        runs = (
            client.search_runs([exp.experiment_id], schema.tag_filter(schema.TAG_KIND, schema.KIND_RUN))
            if exp
            else []
        )
        if runs and schema.TAG_CHECKPOINT in runs[0].data.tags:
            break
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (killed,) = runs_of(server.uri, "moving")
    assert killed.info.status == "RUNNING"
    host_b = spec_in(tmp_path / "b", "moving", epochs=20, replicates=1)  # no local file of host a
    plan = tmp_path / "plan.txt"
    with plan.open("w") as f:  # within the claim timeout of its last heartbeat another host leaves it alone
        seedvar.sweep(load_study(host_b), tracking_uri=server.uri, dry_run=True, claim_timeout=3600, out=f)
    assert "1 runs: 1 running" in plan.read_text()
    # the takeover waits for the event it needs: no heartbeat for longer than the claim timeout (4 s)
    beat = float(client.get_run(killed.info.run_id).data.tags[schema.TAG_HEARTBEAT])
    while time.time() - beat <= 4:
        time.sleep(0.1)
    result = seedvar.sweep(load_study(host_b), tracking_uri=server.uri, progress=False, claim_timeout=4)
    (outcome,) = result.outcomes
    assert outcome.status == "FINISHED" and outcome.run_id == killed.info.run_id  # the same MLflow run
    run = client.get_run(killed.info.run_id)
    assert int(run.data.tags[schema.TAG_RESUMED]) >= 1
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "train.loss")) == list(
        range(1, 21)
    )
    reference = seedvar.sweep(
        load_study(spec_in(tmp_path / "c", "reference", epochs=20, replicates=1)),
        tracking_uri=server.uri,
        progress=False,
    )
    assert outcome.weights_sha256 == reference.outcomes[0].weights_sha256
    # the report reads the study through the server
    out = seedvar.report("moving", tmp_path / "report", tracking_uri=server.uri, formats=["md"]).folder
    assert "hybridsn" in (out / "tables" / "accuracy.csv").read_text()


def assert_each_value_once(uri: str, name: str) -> None:
    """No metric value twice: in every run of the study, each metric has at most one value per step."""
    client = MlflowClient(uri)
    for run in runs_of(uri, name):
        for key in run.data.metrics:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), (run.info.run_name, key, sorted(steps))


# A client gives up on a stalled request after this many seconds (MLflow's default is 120; seedvar's 60).
CLIENT_TIMEOUT = "5"


@pytest.fixture
def proxy(server):
    """A fault-injecting proxy in front of the server: sweeps talk to it, the checks to the server."""
    faulty = FaultyProxy(server.port)
    yield faulty
    faulty.close()


def test_sweep_through_a_faulty_connection_finishes_every_run_once(server, proxy, tmp_path, monkeypatch):
    """Errors answered for the server, requests stalled past the client's timeout, connections cut before
    the server saw the whole request or after it answered (the work done, the answer lost), and a short
    outage: every run FINISHED once, every epoch and test pass logged once, nothing left behind."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", CLIENT_TIMEOUT)
    proxy.inject(
        Fault("status", "experiments/get-by-name", status=504),
        Fault("lost_reply", "runs/create", body=schema.TAG_SPEC),  # the sweep's parent run: made, reply lost
        Fault("lost_reply", "runs/create", body=schema.TAG_CONFIG_HASH),  # the first trained model's run
        Fault("stall", "runs/search", nth=3),
        Fault("status", "runs/search", nth=5, status=502),
        # an epoch's metrics stored, the reply lost, then the server away for longer than an epoch waits
        # for it: the epoch is sent again with the next one
        Fault("lost_reply", "runs/log-batch", body=schema.train_metric("loss")),
        Fault("status", "runs/log-batch", body=schema.train_metric("loss"), nth=2, count=12),
        Fault("stall", "runs/log-batch", nth=20),
        Fault("cut_request", "runs/log-batch", nth=25),
        Fault("status", "runs/log-inputs", status=500),
        Fault("cut_request", "PUT /api/2.0/mlflow-artifacts", nth=3),
        Fault("status", "PUT /api/2.0/mlflow-artifacts", nth=5),
        Fault("lost_reply", "PUT /api/2.0/mlflow-artifacts", nth=7),
        Fault("lost_reply", "runs/update"),  # a run marked FINISHED, the reply lost
        Fault("status", "", nth=70, count=6),  # an outage of six requests, whatever they are
    )
    spec = spec_in(tmp_path / "host", "faults", epochs=3, replicates=2)
    proc = sweep(spec, proxy.uri, "--checkpoint-every", "0")
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert not proxy.pending(), (proxy.pending(), proxy.log)  # every planned fault was injected
    assert_complete(server.uri, "faults", expand(load_study(spec), "cpu"), epochs=3)
    assert [r.info.status for r in runs_of(server.uri, "faults")] == ["FINISHED"] * 2  # no other run
    (parent,) = runs_of(server.uri, "faults", schema.KIND_SWEEP)
    assert parent.info.status == "FINISHED"
    assert_each_value_once(server.uri, "faults")


def test_outage_longer_than_retry_for_stops_the_sweep_and_a_rerun_completes(
    server, proxy, tmp_path, monkeypatch
):
    """The server answers 503 to everything once the first run's first checkpoint is in: the sweep retries
    for --retry-for seconds, then stops with one line. The store holds nothing half done (the run stays
    resumable), and a rerun, through more faults, resumes it into the same MLflow run, trains the rest
    and closes the dead sweep's parent run as FAILED."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", CLIENT_TIMEOUT)
    spec = spec_in(tmp_path / "host", "outage", epochs=3, replicates=2)
    proxy.outage("status", 503, after=Fault("status", "runs/log-batch", body=schema.TAG_CHECKPOINT))
    proc = sweep(spec, proxy.uri, "--checkpoint-every", "0", "--retry-for", "4")
    output, _ = proc.communicate(timeout=300)
    proxy.heal()
    assert proc.returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("seedvar: error: ")]
    assert len(errors) == 1 and errors[0] == output.strip().splitlines()[-1], output
    assert f"cannot reach the tracking server {proxy.uri}" in errors[0], output
    assert "retried for 4 s" in errors[0] and "rerunning the sweep resumes" in errors[0], output
    assert "Traceback" not in output and "FAILED" not in output, output
    (interrupted,) = runs_of(server.uri, "outage")
    assert interrupted.info.status == "RUNNING" and schema.TAG_CHECKPOINT in interrupted.data.tags
    (dead,) = runs_of(server.uri, "outage", schema.KIND_SWEEP)
    assert dead.info.status == "RUNNING"  # nobody could close it: the next sweep will
    client = MlflowClient(server.uri)  # straight to the server, not through the proxy
    assert [m.step for m in client.get_metric_history(interrupted.info.run_id, "train.loss")] == [1]

    proxy.inject(
        Fault("lost_reply", "runs/update"),  # the resumed run set RUNNING again, the reply lost
        Fault("status", "metrics/get-history"),
        Fault("cut_request", "GET /api/2.0/mlflow-artifacts"),  # the checkpoint's download
    )
    rerun = sweep(spec, proxy.uri, "--checkpoint-every", "0", "--claim-timeout", "2")
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert not proxy.pending(), (proxy.pending(), proxy.log)
    assert_complete(server.uri, "outage", expand(load_study(spec), "cpu"), epochs=3)
    resumed = client.get_run(interrupted.info.run_id)
    assert resumed.info.status == "FINISHED" and int(resumed.data.tags[schema.TAG_RESUMED]) >= 1
    assert [r.info.status for r in runs_of(server.uri, "outage")] == ["FINISHED"] * 2
    parents = {r.info.run_id: r for r in runs_of(server.uri, "outage", schema.KIND_SWEEP)}
    assert parents[dead.info.run_id].info.status == "FAILED"
    assert "the sweep's process stopped" in parents[dead.info.run_id].data.tags[schema.TAG_FAILURE]
    assert sorted(r.info.status for r in parents.values()) == ["FAILED", "FINISHED"]
    assert_each_value_once(server.uri, "outage")


def test_many_concurrent_writers_to_one_server_worker_never_deadlock(server, tmp_path, monkeypatch):
    """MLflow's log_batch holds a pooled database connection while it opens a second one: with
    SQLAlchemy's default pool (5 + 10) 16 requests at once in one worker wait for each other until the
    pool times out. `seedvar server` sizes the pool so that cannot happen."""
    import threading

    from mlflow.entities import Metric

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a stuck or failed call is an error here
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "25")  # below the pool's own 30 s timeout
    single = Server(tmp_path, server.backend, postgres_module().free_port(), "--workers", "1")
    try:
        client = MlflowClient(single.uri)
        exp = client.create_experiment("concurrent-writers")
        writers = 32
        run_ids = [client.create_run(exp).info.run_id for _ in range(writers)]
        barrier, errors = threading.Barrier(writers), []

        def write(run_id: str) -> None:
            barrier.wait()
            try:
                for step in range(10):
                    metrics = [Metric(f"m{i}", float(i), 0, step) for i in range(50)]
                    client.log_batch(run_id, metrics=metrics)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

        threads = [threading.Thread(target=write, args=(r,)) for r in run_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:3]
        assert all(len(client.get_metric_history(r, "m7")) == 10 for r in run_ids)
    finally:
        assert single.stop() == 0


def test_server_beyond_loopback_requires_credentials(postgres, server, tmp_path, monkeypatch):
    pg = postgres_module()
    port = pg.free_port()
    backend = server.backend  # a second server on the team's database: no migrations to wait for
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedvar",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--backend-store-uri",
            backend,
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SEEDVAR_ADMIN_PASSWORD"},
        timeout=120,
    )
    assert refused.returncode == 2 and refused.stderr.startswith("seedvar: error: --host 0.0.0.0")
    password = tmp_path / "admin-password"
    password.write_text("correct horse battery\n")
    srv = Server(tmp_path, backend, port, "--host", "0.0.0.0", "--admin-password-file", str(password))
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"  # loopback only
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url, timeout=10)
        assert denied.value.code == 401
        spec = spec_in(tmp_path / "host", "guarded", epochs=1, replicates=1)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": "wrong password",
        }
        cmd = [
            sys.executable,
            "-m",
            "seedvar",
            "sweep",
            str(spec),
            "--tracking-uri",
            f"http://127.0.0.1:{port}",
        ]
        wrong = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert wrong.returncode == 2 and "refused the credentials" in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "correct horse battery")
        store = Store(f"http://127.0.0.1:{port}")  # the right password: in
        assert store.experiment_id("guarded") is not None
    finally:
        assert srv.stop() == 0
    assert srv.tree and not [p for p in srv.tree if alive(p)]  # SIGTERM stopped the tree...
    with pytest.raises(OSError):  # ...and freed the port
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)


def test_ray_cluster_of_two_hosts_sweeps_through_the_server(server, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)  # a second node: each node of a real cluster is one host
    try:
        spec = spec_in(tmp_path / "driver", "ray-hosts", epochs=1, replicates=4)
        study = load_study(spec, {"execution.executor": "ray", "execution.ray_address": cluster.address})
        result = seedvar.sweep(study, tracking_uri=server.uri, progress=False)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert [o.status for o in result.outcomes] == ["FINISHED"] * 4
    assert_complete(server.uri, "ray-hosts", expand(study, "cpu"), epochs=1)
    nodes = {r.data.tags[schema.TAG_RAY_NODE] for r in runs_of(server.uri, "ray-hosts")}
    assert len(nodes) == 2  # both hosts trained runs, writing only to the server
