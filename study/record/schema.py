"""The run schema: every name a run writes and the report reads, and how results map onto them.

The engine computes a `RunResult` (seedvar.results), the recorder writes it under these names, the run
reader and the analysis read them back: a tag, param, metric or file key that crosses those rooms is
spelled here and nowhere else. No MLflow import, so the report can use it without loading torch.
"""

from __future__ import annotations

from collections.abc import Mapping

from seedvar.results import EVAL, TRAIN, EpochStats, PassSummary, RunResult

# -- tags ------------------------------------------------------------------------------------------------
TAG_PREFIX = "seedvar."
TAG_KIND = "seedvar.kind"  # KIND_RUN on a trained model's run, KIND_SWEEP on a sweep's parent run
KIND_RUN = "run"
KIND_SWEEP = "sweep"
KIND_TESTED = "tested"  # a run seedvar did not train whose model seedvar tested (seedvar.log_test_modes)
KIND_CONDITION = "condition"  # one run per condition: its spread across seeds; its seed runs are its children
TAG_CONDITION = "seedvar.condition"  # the condition key, on a condition's run and on each of its seed runs
TAG_SWEEP_RUN = "seedvar.sweep_run"  # the sweep run that trained a run (its parent until its condition's run)
TAG_CONFIG_HASH = "seedvar.config_hash"
TAG_MODEL = "seedvar.model"
TAG_REPLICATE = "seedvar.replicate"
TAG_VARIED = "seedvar.varied_source"
TAG_VARIANT = "seedvar.variant"  # "split=spatial" when a spec compares values of dataset options
TAG_DETERMINISTIC = "seedvar.deterministic"
TAG_WEIGHTS = "seedvar.weights_sha256"
TAG_FAILURE = "seedvar.failure"
TAG_RESUMED = "seedvar.resumed_from_epoch"
TAG_DEVICE_NAME = "seedvar.device_name"
TAG_SPEC = "seedvar.spec"
TAG_FAILED_RUNS = "seedvar.failed_runs"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
# set by `seedvar reproduce` on the run it retrained: its verdict, the date and where it was checked
TAG_REPRODUCED = "seedvar.reproduced"
# who holds a claim: the sweep holding a config's (tracking servers), a sweep's own lock (local stores)
TAG_OWNER = "seedvar.claim_owner"
TAG_HEARTBEAT = "seedvar.heartbeat"  # unix time of the claim's last heartbeat
TAG_CHECKPOINT = "seedvar.checkpoint"  # artifact path of the run's current epoch checkpoint
TAG_RAY_NODE = "seedvar.ray_node_id"  # the Ray node that ran the run (--executor ray)
# a random id given to a run as it is created: a creation retried after its answer was lost finds the run
# the first attempt made instead of making a second one
TAG_CREATION = "seedvar.creation_id"

# -- experiment tags and the MLflow UI ---------------------------------------------------------------------
# MLflow 3 opens an experiment in its GenAI view unless the experiment says it trains models.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# The UI keeps shareable views of the runs table as experiment tags, opened by ?viewStateShareKey=<key>.
TAG_VIEW_STATE_PREFIX = "mlflow.sharedViewState."
VIEW_STATE_KEY = "seedvar"
TAG_VIEW_STATE = TAG_VIEW_STATE_PREFIX + VIEW_STATE_KEY

# A two-stage study's target (seedvar.stats.twostage.Target as JSON), so the report states and checks its rule.
TAG_TARGET = "seedvar.target"
TAG_CLAIMS = "seedvar.claims"  # experiment tag: the spec's claims (JSON), held by every report of the study

# -- params ----------------------------------------------------------------------------------------------
PARAM_MODEL = "model"
PARAM_REPLICATE = "replicate"
PARAM_DATASET = "dataset"
PARAM_DETERMINISTIC = "deterministic"
PARAM_DEVICE = "device"
PARAM_VARIED = "varied_source"  # the source a run varies alone, or REFERENCE (every source)
# a run's resolved settings, one param each: `dataset.pca`, `model.width`, `train.lr`, `test.passes`
PARAM_DATASET_PREFIX = "dataset."
PARAM_MODEL_PREFIX = "model."
PARAM_TRAIN_PREFIX = "train."
PARAM_TEST_PREFIX = "test."
PARAM_SEED_PREFIX = "seed."
PARAM_DATA_PREFIX = "data."  # facts of the loaded data (pixels, PCA variance, ...), logged once per run
PARAM_MODEL_SOURCE = "model_source.sha256"  # sha256 of a user's model file (not logged for built-in models)
# "true" when every stochastic mode ran its trunk once per batch, "false" when any ran K full passes;
# PARAM_TEST_SPLIT says where the model was split, or why it was not.
PARAM_TEST_FUSED = "test.fused"
PARAM_TEST_SPLIT = "test.split"
PARAM_TEST_SIZE = "test.size"  # test samples of a tested run (seedvar.log_test_modes)
PARAM_TEST_CLASSES = "test.classes"
PARAM_TEST_DIGEST = "test.digest"  # dataset digest of the test set a tested run was tested on
# What a seed param is called in runs seedvar did not train (shell wildcards): never a condition.
SEED_PARAMS = ("seed", "random_state", "*_seed", "seed_*", f"{PARAM_SEED_PREFIX}*", "*.seed")

# -- metrics ---------------------------------------------------------------------------------------------
TRAIN_METRICS = EpochStats.FIELDS  # one value per epoch, step = epoch
METRIC_TOTAL_SECONDS = "time.total_seconds"


def train_metric(name: str) -> str:
    """`train.loss` and friends: per-epoch training curves."""
    return f"train.{name}"


def test_metric(mode: str, name: str) -> str:
    """`test.<mode>.acc` (per pass, step = pass) and the per-mode summaries `test.<mode>.acc_mean` ..."""
    return f"test.{mode}.{name}"


# Earlier versions logged each condition's spread on the sweep's parent run as summary.<condition>.<mode>.*;
# the view drops those columns. Now it is logged once, on the condition's own run (SEED_PREFIX).
SUMMARY_PREFIX = "summary."
SEED_STATS = ("acc_mean", "acc_std", "acc_ci_low", "acc_ci_high", "runs")


# A two-stage sweep's parent run: each condition's decision, `target.<condition>.<stat>`.
TARGET_PREFIX = "target."
TARGET_STATS = {
    "pilot_std": "s",
    "replicates": "n",
    "wanted": "wanted",
    "half_width": "half_width",
}  # -> Decision


def target_metric(condition: str, stat: str) -> str:
    """`target.hybridsn.replicates` and friends, on a two-stage sweep's parent run."""
    return f"{TARGET_PREFIX}{condition}.{stat}"


SEED_PREFIX = "seeds."


def seed_metric(mode: str, stat: str) -> str:
    """`seeds.eval.acc_mean` and friends (SEED_STATS), on a condition's run: the same names on every
    condition, so that the runs table lines the conditions up as rows."""
    return f"{SEED_PREFIX}{mode}.{stat}"


# -- dataset inputs --------------------------------------------------------------------------------------
# Each run logs its data as an MLflow dataset input named after the dataset (`indian_pines`); its digest
# is the start of the loaded data's fingerprint (MLflow keeps digests short), its profile the settings.
DATASET_CONTEXT = "train+test"
DIGEST_LENGTH = 12


def dataset_digest(fingerprint: str) -> str:
    """The digest MLflow shows for a dataset: the first hex digits of its sha256 fingerprint."""
    return fingerprint[:DIGEST_LENGTH]


# -- artifacts -------------------------------------------------------------------------------------------
ARTIFACT_PREDICTIONS = "predictions.npz"
ARTIFACT_CONFIG = "config.json"
ARTIFACT_ENVIRONMENT = "environment.json"
ARTIFACT_STUDY = "study.toml"
ARTIFACT_PLAN = "plan.json"
ARTIFACT_REPORT = "report"  # the folder `seedvar report` logs to the latest sweep run


def environment_tag(key: str) -> str:
    """The tag a run's environment entry is logged under: `seedvar.torch`, `seedvar.cuda`, ..."""
    return f"{TAG_PREFIX}{key}"


def tag_filter(tag: str, value: str) -> str:
    """An MLflow search filter on one tag (backquoted: seedvar's tag names contain dots)."""
    return f"tags.`{tag}` = '{value}'"


# -- results as metrics and params ------------------------------------------------------------------------
Metric = tuple[str, float, int]  # (name, value, step)


def epoch_metrics(stats: EpochStats) -> list[Metric]:
    """One epoch's training metrics, step = epoch."""
    return [(train_metric(k), float(getattr(stats, k)), stats.epoch) for k in TRAIN_METRICS]


def summary_metrics(summary: PassSummary, mode: str) -> list[Metric]:
    """A mode's summary over passes: `test.<mode>.acc_mean` and friends."""
    return [(test_metric(mode, f), float(getattr(summary, f)), 0) for f in PassSummary.FIELDS]


def summary_from_metrics(mode: str, metrics: Mapping[str, float]) -> PassSummary | None:
    """A mode's summary read back from a run's latest metrics; None when the run has no such mode."""
    keys = [test_metric(mode, f) for f in PassSummary.FIELDS]
    if not all(k in metrics for k in keys):
        return None
    values = [metrics[k] for k in keys]
    return PassSummary(int(values[0]), *map(float, values[1:]))


def test_params(result: RunResult) -> dict[str, str]:
    """How the stochastic modes were computed: PARAM_TEST_FUSED and PARAM_TEST_SPLIT."""
    fused = result.fused
    if fused is None:
        return {}
    return {PARAM_TEST_FUSED: str(fused).lower(), PARAM_TEST_SPLIT: result.split[:500]}


def test_metrics(result: RunResult) -> list[Metric]:
    """Per-pass metrics (step = pass) and the per-mode summaries."""
    out: list[Metric] = []
    for mode, mode_result in result.modes.items():
        for name, values in mode_result.metrics.items():
            if values.ndim == 2:  # per-class values: class_acc.<c>
                out += [
                    (test_metric(mode, f"{name}.{c}"), float(v), p)
                    for p, row in enumerate(values)
                    for c, v in enumerate(row)
                ]
            else:
                out += [(test_metric(mode, name), float(v), p) for p, v in enumerate(values)]
        out += summary_metrics(result.summaries[mode], mode)
        out.append((test_metric(mode, "seconds"), mode_result.seconds, 0))
    return out


# A run's description in the MLflow runs table: what the lab compared. The table shows 50 characters.
DESCRIPTION_MODES = (EVAL, TRAIN)
