"""What MLflow's UI shows of a study: its conditions as rows of the runs table, as a shared view.

MLflow 3.17's UI (mlflow/server/js/src/experiment-tracking) keeps shareable views of an experiment's runs
table as experiment tags `mlflow.sharedViewState.<key>` holding JSON, opened by `?viewStateShareKey=<key>`.
It takes the search facets (`orderByKey`, `orderByAsc`, `searchFilter`, ...) and the UI fields
(`selectedColumns`, `columnOrder`, `columnWidths`, `groupBy`, `groupsExpanded`, ...) from it, but not
`runsExpanded`: a shared view cannot unfold a parent run. The table loads runs 100 at a time in the
view's order and groups or nests only the runs it has loaded, so a study of 8 models x 100 seeds shown
run by run needs "Load more" again and again before every model appears. seedvar's view sorts by the
metric only the condition runs carry (one per model, determinism and dataset variant, each holding its
spread across seeds as `seeds.<mode>.<stat>` metrics), best eval accuracy first: the conditions are the
first rows (the lab's 8 on the first screen), and the trained models' runs follow (a sort puts runs without
the metric last, and a flat list nests nothing). Nothing is filtered out, so a study whose sweep was
interrupted before it recorded its conditions still shows its runs. A condition's seed runs are its
child runs, which its run page lists (one click on its name).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from seedvar.record import schema as s
from seedvar.results import EVAL, MODES, STOCHASTIC_MODES, points

WORKFLOW_MODEL_TRAINING = "machine_learning"  # ?workflowType=: the UI's "Model training" toggle
MAX_TAG_VALUE = 20_000  # MLflow's limit on an experiment tag's value
_DEFLATE = "deflate;"  # the UI reads "deflate;" + base64(zlib) when a state is too long for plain JSON

RUN_NAME, DESCRIPTION, DATASET = "Run Name", "Description", "Dataset"
WIDTHS = {RUN_NAME: 180, DESCRIPTION: 290, DATASET: 300}
STAT_WIDTH = 110  # each `seeds.<mode>.<stat>` column
ORDER_MODES = MODES  # the conditions are ranked by the first of these a study has


def column(kind: str, key: str) -> str:
    """A column id as the UI spells it: `metrics.\\`test.eval.acc_mean\\``, `attributes.\\`Dataset\\``."""
    return f"{kind}.`{key}`"


def columns(modes: Sequence[str]) -> list[str]:
    """Description, each condition's spread across seeds per mode (mean, std, 95% CI, seeds), then what
    each trained model's run shows: its dataset and accuracy per mode (mean, and for stochastic modes the
    spread over passes and the flip rate)."""
    out = [column("attributes", DESCRIPTION)]
    for mode in modes:
        out += [column("metrics", s.seed_metric(mode, stat)) for stat in s.SEED_STATS]
    out.append(column("attributes", DATASET))
    for mode in modes:
        out.append(column("metrics", s.test_metric(mode, "acc_mean")))
        if mode in STOCHASTIC_MODES:
            out += [column("metrics", s.test_metric(mode, n)) for n in ("acc_std", "flip_rate")]
    return out


def view_state(modes: Sequence[str], previous: str | None = None) -> dict:
    """The runs table seedvar shares: one row per condition, best first, then every other run; the key
    columns first. Columns a previous state showed (modes of earlier sweeps) are kept after the new
    ones, except the per-condition columns of the sweep run that earlier seedvar versions showed."""
    selected = columns(modes)
    old = decode(previous) if previous else {}
    stale = column("metrics", s.SUMMARY_PREFIX)[:-1]
    selected += [c for c in old.get("selectedColumns", []) if c not in selected and not c.startswith(stale)]
    first = next((m for m in ORDER_MODES if m in modes), modes[0] if modes else EVAL)
    widths = {column("attributes", k): w for k, w in WIDTHS.items()}
    seeds = column("metrics", s.SEED_PREFIX)[:-1]  # "metrics.`seeds."
    widths.update({c: STAT_WIDTH for c in selected if c.startswith(seeds)})
    return {
        "searchFilter": "",
        "orderByKey": column("metrics", s.seed_metric(first, "acc_mean")),
        "orderByAsc": False,
        "selectedColumns": selected,
        "columnOrder": [column("attributes", RUN_NAME), *selected],
        "columnWidths": widths,
    }


def condition_note(by_mode: Mapping[str, Mapping[str, float | int | None]]) -> str:
    """A condition run's description, as the runs table shows it (50 characters): its spread across seeds
    in points, `eval 95.56±1.24 (CI 95.31-95.81), 100 seeds`."""
    mode = next((m for m in ORDER_MODES if m in by_mode), next(iter(by_mode)))
    v = by_mode[mode]
    n = int(v["runs"] or 0)
    line = f"{mode} {points(float(v['acc_mean'] or 0)):.2f}"
    std, low, high = v.get("acc_std"), v.get("acc_ci_low"), v.get("acc_ci_high")
    if std is not None and low is not None and high is not None:
        line += f"±{points(std):.2f} (CI {points(low):.2f}-{points(high):.2f})"
    return f"{line}, {n} seed{'' if n == 1 else 's'}"


def encode(state: Mapping) -> str:
    """Plain JSON when it fits in a tag, else the UI's compressed form."""
    text = json.dumps(state, separators=(",", ":"))
    if len(text) <= MAX_TAG_VALUE:
        return text
    packed = _DEFLATE + base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    if len(packed) > MAX_TAG_VALUE:
        raise ValueError(
            f"the shared view state takes {len(packed)} characters, over MLflow's {MAX_TAG_VALUE}"
        )
    return packed


def decode(value: str) -> dict:
    """A state as `encode` (or the UI) wrote it; an unreadable one counts as empty."""
    try:
        if value.startswith(_DEFLATE):
            value = zlib.decompress(base64.b64decode(value[len(_DEFLATE) :])).decode()
        state = json.loads(value)
    except (ValueError, zlib.error):
        return {}
    return state if isinstance(state, dict) else {}


def experiment_tags(modes: Sequence[str], current: Mapping[str, str]) -> dict[str, str]:
    """The tags that make a study open as a model-training experiment on seedvar's shared view."""
    state = view_state(modes, current.get(s.TAG_VIEW_STATE))
    return {s.TAG_EXPERIMENT_KIND: s.EXPERIMENT_KIND, s.TAG_VIEW_STATE: encode(state)}


def runs_url(base: str, experiment_id: str, tags: Mapping[str, str]) -> str:
    """The study's runs table in the model-training view, on seedvar's shared view when it has one.

    It goes straight to the runs tab: the experiment page's redirect to its default tab keeps
    `workflowType` but drops `viewStateShareKey`.
    """
    query = {"workflowType": WORKFLOW_MODEL_TRAINING}
    if s.TAG_VIEW_STATE in tags:
        query["viewStateShareKey"] = s.VIEW_STATE_KEY
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{urlencode(query)}"
