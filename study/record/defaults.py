"""How patient the record is with a shared store: defaults used by the store and the CLI's help texts.

Free of MLflow imports, so `seedvar --help` and `seedvar models` start at once.
"""

ENV_RETRY = "SEEDVAR_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 120.0  # a store call keeps retrying an unreachable tracking server this long
DEFAULT_CLAIM_TIMEOUT = 120.0  # seconds without a heartbeat after which a claimed run is stale
