#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels that the lent GPU machine lacks (it cannot download
# anything; its image has Python 3.12 with torch, numpy, pandas, scipy, statsmodels, seaborn, ...):
# MLflow and its store dependencies, and tensorly (which ships Indian Pines). About 45 MB, into
# .gpu-wheels/ (git-ignored), carried to the device by `device run --carry .gpu-wheels`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-wheels
pip=${PIP:-.venv/bin/pip}
"$pip" download -q --dest .gpu-wheels --python-version 3.12 --only-binary=:all: \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --platform any "mlflow==3.17.2" "tensorly>=0.8"
# what the device image already holds is not carried (keeps the carry under 64 MiB)
python3 - <<'PY'
import re
from pathlib import Path
have = {"numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "pyarrow", "jinja2", "markupsafe", "werkzeug",
        "requests", "urllib3", "idna", "certifi", "charset-normalizer", "protobuf", "packaging", "pyyaml",
        "click", "cloudpickle", "six", "python-dateutil", "threadpoolctl", "joblib", "contourpy", "cycler",
        "fonttools", "kiwisolver", "pillow", "pyparsing", "typing-extensions", "zipp", "h11", "anyio", "sniffio",
        "tzdata", "pytz", "greenlet", "markdown", "statsmodels", "patsy", "seaborn", "tabulate", "tqdm",
        "httpx", "httpcore", "grpcio", "psutil", "narwhals", "wrapt", "fsspec", "filelock"}
for w in Path(".gpu-wheels").glob("*.whl"):
    if re.split(r"-\d", w.name)[0].lower().replace("_", "-") in have:
        w.unlink()
PY
du -sh .gpu-wheels
