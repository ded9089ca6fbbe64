"""`seedvar.lightning.TestModes`: a Lightning callback that tests the trained model in seedvar's modes
at the end of `trainer.test` (and, if asked, at the end of fit) and logs it, through
seedvar.log_test_modes, into the run of the trainer's MLFlowLogger.

Lightning is an optional extra (`seedvar[lightning]`): it is imported here only, and only when this
module is, so `import seedvar` works without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seedvar.errors import TestModesError
from seedvar.results import MODES

try:
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import MLFlowLogger
except ImportError as e:  # pragma: no cover - only without the extra
    raise ImportError("seedvar.lightning needs Lightning: pip install 'seedvar[lightning]'") from e


class TestModes(pl.Callback):
    """Test the model in eval / train / MC-dropout modes with `passes` passes on the trainer's test
    loader (or `data`, any loader of (x, y) batches) and log it to the MLFlowLogger's run."""

    __test__ = False  # pytest: not a test class

    def __init__(
        self,
        passes: int = 10,
        *,
        modes: Sequence[str] = MODES,
        data: Any = None,
        on_fit_end: bool = False,
        batch_size: int = 256,
    ) -> None:
        self.passes, self.modes, self.data = passes, tuple(modes), data
        self.at_fit_end, self.batch_size = on_fit_end, batch_size
        self.predictions: Any = None

    def _log(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loaders: Any) -> None:
        from seedvar.testmodes import log_test_modes

        if trainer.global_rank != 0:
            return
        logger = next((lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)), None)
        if logger is None:
            raise TestModesError("TestModes: the trainer has no MLFlowLogger to log to")
        data = self.data if self.data is not None else loaders
        if isinstance(data, list | tuple) and len(data) == 1 and not hasattr(data[0], "shape"):
            data = data[0]
        if data is None:
            raise TestModesError("TestModes: no test data; pass data= or give trainer.test a loader")
        import mlflow

        mlflow.set_tracking_uri(logger._tracking_uri)
        self.predictions = log_test_modes(
            pl_module,
            data,
            passes=self.passes,
            modes=self.modes,
            run_id=logger.run_id,
            batch_size=self.batch_size,
        )

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log(trainer, pl_module, trainer.test_dataloaders)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_fit_end:
            self._log(trainer, pl_module, self.data)
