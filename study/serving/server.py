"""`seedvar server`: MLflow's tracking server for a study team (PostgreSQL backend, proxied artifacts).

Everything is MLflow's: its server, its basic-auth app, PostgreSQL through SQLAlchemy and psycopg.
seedvar only chooses safe defaults (loopback unless --host says otherwise; authentication required
beyond loopback), prints the URI to pass to --tracking-uri, and stops the whole process tree on
SIGTERM and SIGINT.
"""

from __future__ import annotations

import configparser
import importlib.util
import ipaddress
import os
import secrets
import socket
from pathlib import Path

from seedvar.errors import UserError
from seedvar.record.store import DEFAULT_URI, local_db
from seedvar.serving import supervise
from seedvar.serving.supervise import HOST, PORT, SERVER_WORKERS

ENV_ADMIN_PASSWORD = "SEEDVAR_ADMIN_PASSWORD"
MIN_PASSWORD = 12  # MLflow's basic-auth refuses shorter passwords


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def admin_password(password_file: str | None) -> str | None:
    """From --admin-password-file, else $SEEDVAR_ADMIN_PASSWORD; never a default."""
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as exc:
            raise UserError(
                f"--admin-password-file {password_file}: cannot read it ({exc.strerror})"
            ) from None
        if not password:
            raise UserError(f"--admin-password-file {password_file} is empty: put the admin password in it")
        return password
    return os.environ.get(ENV_ADMIN_PASSWORD) or None


def _default_backend() -> tuple[str, Path]:
    """The local store's sqlite file (absolute, whatever the server's working folder) and artifacts folder."""
    db = local_db(DEFAULT_URI)
    assert db is not None
    return f"sqlite:///{db}", db.parent / "artifacts"


POOL_SIZE = 5  # database connections a server worker keeps open
REQUEST_THREADS = 40  # requests a server worker handles at once (anyio's default thread limit)


def server_command(
    backend_store_uri: str, artifacts_destination: str, host: str, port: int, workers: int, auth: bool
) -> list[str]:
    """The `mlflow server` command line."""
    cmd = supervise.python_module(
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    )
    return [*cmd, "--app-name", "basic-auth"] if auth else cmd


def _auth_config(folder: Path, database_uri: str) -> Path:
    """MLflow's basic-auth settings: users in their own database, new users may only read."""
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": database_uri,
        "admin_username": "admin",
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "basic_auth.ini"
    with path.open("w") as f:
        config.write(f)
    return path


def run_server(
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    host: str = HOST,
    port: int = PORT,
    workers: int = SERVER_WORKERS,
    insecure: bool = False,
    admin_password_file: str | None = None,
    auth_db: str | None = None,
) -> int:
    """Start the tracking server and serve until SIGTERM or Ctrl-C; then stop it and everything it started."""
    default_backend, default_artifacts = _default_backend()
    backend = backend_store_uri or default_backend
    artifacts = artifacts_destination or str(default_artifacts)
    if backend.startswith("postgresql") and importlib.util.find_spec("psycopg") is None:
        raise UserError(
            "a PostgreSQL backend needs PostgreSQL's driver: pip install 'seedvar[server]' (psycopg)"
        )
    check_database(backend)
    if "://" not in artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        artifacts = str(Path(artifacts).resolve())
    env = dict(os.environ)
    # MLflow's job runner (GenAI jobs, a pool of huey consumers) is nothing seedvar uses
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # Each log_batch holds one pooled database connection and opens a second inside it; with SQLAlchemy's
    # default pool (5 + 10 overflow) 16 concurrent writers to one worker deadlock until the pool times
    # out, again and again. Room for two connections per request thread (anyio's 40) prevents it.
    env.setdefault("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", str(POOL_SIZE))
    env.setdefault("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", str(2 * REQUEST_THREADS - POOL_SIZE))
    auth = not is_loopback(host)
    if auth:
        password = admin_password(admin_password_file)
        if password is None and not insecure:
            raise UserError(
                f"--host {host} lets other machines connect: set the admin password in ${ENV_ADMIN_PASSWORD} "
                "or --admin-password-file (users then log in with MLFLOW_TRACKING_USERNAME/PASSWORD), "
                "or pass --insecure to serve without authentication"
            )
        if password is not None and len(password) < MIN_PASSWORD:
            raise UserError(
                f"the admin password must have at least {MIN_PASSWORD} characters (MLflow's rule)"
            )
        auth = password is not None
        if auth:
            if importlib.util.find_spec("flask_wtf") is None:
                raise UserError("MLflow's basic-auth app needs mlflow[auth]: pip install 'seedvar[server]'")
            state = Path(artifacts).parent if "://" not in artifacts else Path.cwd()
            database = auth_db or f"sqlite:///{(state / 'mlflow-auth.db').resolve()}"
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(_auth_config(state, database))
            env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
            env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", _secret_key(state))
    cmd = server_command(backend, artifacts, host, port, workers, auth)
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host  # no DNS lookup
    uri = f"http://{shown}:{port}"
    local = f"http://127.0.0.1:{port}" if not is_loopback(host) else uri

    def ready() -> None:
        print(
            f"MLflow tracking server for seedvar at {uri} (backend {_redact(backend)}, artifacts {artifacts}"
            f"{', basic-auth as admin' if auth else ''}); pass --tracking-uri {uri} to sweeps, reports and "
            "the UI. Ctrl-C or SIGTERM stops it.",
            flush=True,
        )

    supervise.require_port(host, port)
    code = supervise.supervise(
        cmd, env=env, ready=lambda: supervise.answers(f"{local}/health"), on_ready=ready
    )
    if code != 0:
        raise UserError(f"the MLflow server exited with status {code}; its output above says why")
    print("the MLflow server stopped", flush=True)
    return 0


CONNECT_SECONDS = 5  # how long the database may take to accept a connection before the server gives up


def check_database(backend: str) -> None:
    """Connect to a PostgreSQL backend once before starting MLflow's server: a database that cannot be
    reached is one line naming it, not two MLflow tracebacks from the server's workers."""
    scheme = backend.split("://", 1)[0]
    if not scheme.startswith("postgresql"):
        return
    import psycopg

    try:
        psycopg.connect(f"postgresql://{backend.split('://', 1)[1]}", connect_timeout=CONNECT_SECONDS).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(
            f"cannot connect to the database {_redact(backend)} ({reason}): check that PostgreSQL runs there "
            "and that the user and database exist (createuser, createdb), or fix --backend-store-uri"
        ) from None


def _secret_key(folder: Path) -> str:
    """The key MLflow signs its CSRF tokens with: made once, kept beside the auth database so that a
    restarted server (or several behind one address) accepts the same sessions."""
    path = folder / "flask-secret-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def _redact(uri: str) -> str:
    """A database URI without its password, for printing."""
    if "@" not in uri or "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    creds, where = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}@{where}"
