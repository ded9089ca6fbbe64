"""What MLflow's UI shows of a study: its runs table in the model-training view, as a shared view.

MLflow 3.17's UI (mlflow/server/js/src/experiment-tracking) keeps shareable views of an experiment's runs
table as experiment tags `mlflow.sharedViewState.<key>` holding JSON, opened by `?viewStateShareKey=<key>`.
It takes the search facets (`orderByKey`, `orderByAsc`, `searchFilter`, ...) and the UI fields
(`selectedColumns`, `columnOrder`, `columnWidths`, `groupBy`, `groupsExpanded`, ...) from it, but not
`runsExpanded`: a shared view cannot unfold a parent run. Grouping can: grouped rows list every run,
children included, and a group is expanded unless `groupsExpanded` says otherwise; the runs in no group
("Additional runs": the sweeps' parent runs) are folded unless `groupsExpanded` names that group.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

from seedvar.record import schema as s
from seedvar.results import STOCHASTIC_MODES

WORKFLOW_MODEL_TRAINING = "machine_learning"  # ?workflowType=: the UI's "Model training" toggle
MAX_TAG_VALUE = 20_000  # MLflow's limit on an experiment tag's value
_DEFLATE = "deflate;"  # the UI reads "deflate;" + base64(zlib) when a state is too long for plain JSON

RUN_NAME, DESCRIPTION, DATASET = "Run Name", "Description", "Dataset"
GROUP_KEYS = (("param", s.PARAM_MODEL), ("tag", s.TAG_DETERMINISTIC))
WIDTHS = {RUN_NAME: 320, DESCRIPTION: 230, DATASET: 300}


def column(kind: str, key: str) -> str:
    """A column id as the UI spells it: `metrics.\\`test.eval.acc_mean\\``, `attributes.\\`Dataset\\``."""
    return f"{kind}.`{key}`"


def columns(conditions: Iterable[tuple[str, bool]], modes: Sequence[str]) -> list[str]:
    """Description and dataset, each run's accuracy per mode (mean, and for stochastic modes the spread
    over passes and the flip rate), then the parent run's spread across seeds per condition and mode."""
    out = [column("attributes", DESCRIPTION), column("attributes", DATASET)]
    for mode in modes:
        out.append(column("metrics", s.test_metric(mode, "acc_mean")))
        if mode in STOCHASTIC_MODES:
            out += [column("metrics", s.test_metric(mode, n)) for n in ("acc_std", "flip_rate")]
    for model, deterministic in conditions:
        for mode in modes:
            cond = s.condition_key(model, deterministic)
            out += [column("metrics", s.summary_metric(cond, mode, stat)) for stat in s.SEED_STATS]
    return out


def view_state(
    conditions: Iterable[tuple[str, bool]], modes: Sequence[str], previous: str | None = None
) -> dict:
    """The runs table seedvar shares: runs grouped by model and determinism (group rows average each
    column over the seeds), every child run listed, sorted by name, the key columns first. Columns a
    previous state showed (other models of earlier sweeps) are kept after the new ones."""
    selected = columns(conditions, modes)
    old = decode(previous) if previous else {}
    selected += [c for c in old.get("selectedColumns", []) if c not in selected]
    ungrouped = ",".join(f"{mode}.{key}" for mode, key in GROUP_KEYS)  # the group of runs in no group
    return {
        "searchFilter": "",
        "orderByKey": column("tags", "mlflow.runName"),
        "orderByAsc": True,
        "selectedColumns": selected,
        "columnOrder": [column("attributes", RUN_NAME), *selected],
        "columnWidths": {column("attributes", k): w for k, w in WIDTHS.items()},
        "groupBy": {
            "aggregateFunction": "average",
            "groupByKeys": [{"mode": mode, "groupByData": key} for mode, key in GROUP_KEYS],
        },
        "groupsExpanded": {ungrouped: True},
    }


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


def experiment_tags(
    conditions: Iterable[tuple[str, bool]], modes: Sequence[str], current: Mapping[str, str]
) -> dict[str, str]:
    """The tags that make a study open as a model-training experiment on seedvar's shared view."""
    state = view_state(conditions, modes, current.get(s.TAG_VIEW_STATE))
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
