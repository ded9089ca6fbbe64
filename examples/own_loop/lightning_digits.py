"""The same digits MLP trained by Lightning, logged by its MLFlowLogger, tested by seedvar's callback.

python examples/own_loop/lightning_digits.py [--tracking-uri URI] [--experiment NAME]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import MLFlowLogger
from torch import nn
from torch.utils.data import DataLoader

from seedvar.lightning import TestModes

sys.path.insert(0, str(Path(__file__).parent))
from plain import digits  # noqa: E402


class MLP(pl.LightningModule):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self.log("test_acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    ap.add_argument("--experiment", default="own_loop_lightning")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, test = digits()
    for dropout in (0.1, 0.5):
        for seed in range(args.seeds):
            pl.seed_everything(seed, verbose=False)
            logger = MLFlowLogger(args.experiment, tracking_uri=args.tracking_uri)
            logger.log_hyperparams({"seed": seed})
            trainer = pl.Trainer(
                max_epochs=args.epochs,
                logger=logger,
                callbacks=[TestModes(passes=10)],
                enable_progress_bar=False,
                enable_model_summary=False,
                enable_checkpointing=False,
            )
            model = MLP(dropout)
            trainer.fit(model, DataLoader(train, batch_size=32, shuffle=True))
            trainer.test(model, DataLoader(test, batch_size=256), verbose=False)
    print(f"now: seedvar report --experiment {args.experiment} --by dropout")


if __name__ == "__main__":
    main()
