"""`seedvar ui`: the MLflow UI over the same store the sweeps write, bound to localhost by default."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

from study.errors import UserError
from study.record.store import local_db, resolve_uri


def server_command(uri: str, host: str, port: int) -> list[str]:
    """The `mlflow server` command line for a local store: artifacts stay where the sweeps put them."""
    db = local_db(uri)
    if db is None:
        raise UserError(
            f"{uri} is not a local sqlite store; if it is a server, open it in a browser directly"
        )
    if not db.exists():
        raise UserError(f"no MLflow store at {db}: run `seedvar sweep` first or pass --tracking-uri")
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",  # absolute, whatever the server's working folder
        "--default-artifact-root",
        (db.parent / "artifacts").as_uri(),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def serve(tracking_uri: str | None, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the UI until Ctrl-C, then stop the server and return 0."""
    uri = resolve_uri(tracking_uri)
    cmd = server_command(uri, host, port)
    print(f"MLflow UI for {uri} at http://{host}:{port}  (Ctrl-C to stop)", flush=True)
    proc = subprocess.Popen(cmd)
    try:
        return_code = proc.wait()
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print("MLflow UI stopped", flush=True)
        return 0
    if return_code != 0:
        raise UserError(
            f"the MLflow server exited with status {return_code}; is port {port} free? try --port"
        )
    return 0
