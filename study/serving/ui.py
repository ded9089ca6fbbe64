"""`seedvar ui`: the MLflow UI over the same store the sweeps write, opened on each study's runs table.

A local store gets an `mlflow server` of its own on 127.0.0.1 (stopped, whole, by Ctrl-C or SIGTERM);
a tracking server (http or https) is already serving, so nothing is started: only its URLs are printed.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Callable
from typing import TextIO

from seedvar.errors import UserError
from seedvar.record import view
from seedvar.record.store import Store, local_db, resolve_uri
from seedvar.serving import supervise
from seedvar.serving.supervise import HOST, PORT


def server_command(uri: str, host: str, port: int) -> list[str]:
    """The `mlflow server` command line for a local store: artifacts stay where the sweeps put them."""
    db = local_db(uri)
    if db is None:
        raise UserError(f"{uri} is neither a local sqlite store nor an http(s) tracking server")
    if not db.exists():
        raise UserError(f"no MLflow store at {db}: run `seedvar sweep` first or pass --tracking-uri")
    return supervise.python_module(
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
    )


def study_urls(store: Store, base: str, experiment: str | None) -> list[tuple[str, str]]:
    """(study, URL of its runs table) for the chosen study, else for every study in the store."""
    names = store.experiment_names()
    if experiment is not None:
        if experiment not in names:
            known = ", ".join(names) or "none yet"
            raise UserError(
                f"no study named {experiment!r} in {store.uri} (studies: {known}): check --experiment"
            )
        names = [experiment]
    out = []
    for name in names:
        exp_id = store.experiment_id(name, create=False)
        if exp_id is not None:
            out.append((name, view.runs_url(base, exp_id, store.experiment_tags(exp_id))))
    return out


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def serve_ui(
    tracking_uri: str | None,
    host: str = HOST,
    port: int = PORT,
    *,
    experiment: str | None = None,
    open_browser: bool = False,
    out: TextIO | None = None,
    opener: Callable[[str], object] = webbrowser.open,
) -> int:
    """Print each study's runs-table URL (the chosen or only study's first), then serve a local store
    until Ctrl-C or SIGTERM; a tracking server is only pointed at. Returns 0."""
    out = out or sys.stdout
    uri = resolve_uri(tracking_uri)
    if is_server(uri):
        urls = study_urls(Store(uri, create=False), uri, experiment)
        _print_urls(urls, out)
        if not urls:
            print(f"{uri} holds no study yet: run `seedvar sweep` with --tracking-uri {uri}", file=out)
        if open_browser:
            opener(urls[0][1] if urls else uri)
        return 0

    cmd = server_command(uri, host, port)  # checks that the store exists before opening it
    base = f"http://{host}:{port}"
    urls = study_urls(Store(uri, create=False), base, experiment)
    supervise.require_port(host, port)
    _print_urls(urls, out)
    print(f"MLflow UI for {uri} at {base}  (Ctrl-C to stop)", file=out, flush=True)

    def ready() -> None:
        print(f"MLflow UI ready at {base}", file=out, flush=True)
        if open_browser:
            opener(urls[0][1] if urls else base)

    env = dict(os.environ)
    # The job runner (7 huey worker processes) serves GenAI jobs; a study's runs table needs none of it.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    code = supervise.supervise(
        cmd, env=env, ready=lambda: supervise.answers(f"{base}/health"), on_ready=ready
    )
    if code != 0:
        raise UserError(f"the MLflow server exited with status {code}; see its output above")
    print("MLflow UI stopped", file=out, flush=True)
    return 0


def _print_urls(urls: list[tuple[str, str]], out: TextIO) -> None:
    width = max((len(name) for name, _ in urls), default=0)
    for name, url in urls:
        print(f"{name.ljust(width)}  {url}", file=out, flush=True)
