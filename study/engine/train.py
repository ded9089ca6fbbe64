"""Training: a plain loop whose every random draw comes from the run's own seeded generators.

Batch order and augmentation come from explicit generators (order, augment seeds); dropout masks come
from the global generator, seeded with the dropout seed. The trainer's whole state, generators
included, fits in one checkpoint so an interrupted run resumes bit for bit.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seedvar.data import Task
from seedvar.engine.determinism import default_generator
from seedvar.plan import TrainSpec
from seedvar.results import EpochStats


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf: the run is marked FAILED with this reason and the sweep goes on."""


def weights_sha256(model: nn.Module) -> str:
    """sha256 of the final state_dict (names and raw bytes): equal hashes mean bit-identical models."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class Trainer:
    """Trains one model on one task; `state_dict()` captures everything needed to resume."""

    def __init__(
        self, model: nn.Module, task: Task, spec: TrainSpec, seeds: dict[str, int], device: torch.device
    ) -> None:
        self.model, self.task, self.spec, self.device = model, task, spec, device
        params = model.parameters()
        if spec.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=spec.lr, weight_decay=spec.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                params,
                lr=spec.lr,
                momentum=spec.momentum,
                weight_decay=spec.weight_decay,
                nesterov=spec.momentum > 0,
            )
        steps = spec.epochs * max(task.train.num_batches(spec.batch_size), 1)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=steps)
            if spec.schedule == "cosine"
            else None
        )
        self.order = torch.Generator().manual_seed(seeds["order"])
        self.augment = torch.Generator().manual_seed(seeds["augment"])
        self.dropout = default_generator(device)
        self.dropout.manual_seed(seeds["dropout"])
        self.epoch = 0
        self.autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=spec.precision == "bf16")

    def run_epoch(self) -> EpochStats:
        """One pass over the training set; raises NonFiniteLoss when the loss diverges."""
        model, opt = self.model, self.optimizer
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        start = time.perf_counter()
        for x, y in self.task.train.batches(self.spec.batch_size, order=self.order, augment=self.augment):
            if len(y) < 2:  # BatchNorm cannot train on one sample; dropping it changes nothing else
                continue
            with torch.autocast(**self.autocast):
                out = model(x)
                loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if self.scheduler is not None:
                self.scheduler.step()
            loss_sum += loss.detach().float() * len(y)
            correct += (out.argmax(1) == y).sum()
            seen += len(y)
        loss_value = loss_sum.item() / max(seen, 1)  # the one sync per epoch
        seconds = time.perf_counter() - start
        self.epoch += 1
        if not math.isfinite(loss_value):
            raise NonFiniteLoss(
                f"training loss became {loss_value} in epoch {self.epoch} (lr {self.spec.lr})"
            )
        return EpochStats(
            epoch=self.epoch,
            loss=loss_value,
            acc=correct.item() / max(seen, 1),
            seconds=seconds,
            samples_per_s=seen / seconds if seconds > 0 else 0.0,
            lr=opt.param_groups[0]["lr"],
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit for bit: weights, optimizer, every generator."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "order": self.order.get_state(),
            "augment": self.augment.get_state(),
            "dropout": self.dropout.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by state_dict()."""
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.order.set_state(state["order"])
        self.augment.set_state(state["augment"])
        self.dropout.set_state(state["dropout"])
