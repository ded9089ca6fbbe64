"""Progress of a sweep: bars on a terminal (runs, and each worker's epochs), plain lines in a log file."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

from seedvar.results import Events, RunOutcome, Status, describe


def outcome_line(o: RunOutcome) -> str:
    """One line per run as it ends: status, time, accuracy per mode (mean ± std over passes)."""
    if o.status != Status.FINISHED:
        return f"{o.status:8s} {o.run_name}: {o.reason}"
    return f"{Status.FINISHED} {o.run_name} ({o.seconds:.0f} s): {describe(o.summaries)} % acc"


class Progress:
    """Consumes the runs' events (begin, start, epoch, testing, end) from one or more workers."""

    def __init__(self, total: int, enabled: bool = True, stage: str = "") -> None:
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self.stage = stage  # "pilot", "stage 2" in a two-stage sweep: shown with the count
        self.runs = tqdm(total=total, desc=stage or "runs", unit="run", disable=not self.tty, position=0)
        self.bars: dict[int, Any] = {}
        self.done = 0
        self.total = total

    def event(self, worker: int, kind: str, payload: dict[str, Any]) -> None:
        if kind == Events.START:
            self.bars[worker] = tqdm(
                total=payload["epochs"],
                initial=payload["epoch"],
                desc=payload["name"],
                unit="epoch",
                leave=False,
                disable=not self.tty,
                position=worker + 1,
            )
            if payload["epoch"] and self.enabled:
                self.write(f"resuming {payload['name']} from epoch {payload['epoch']}")
        elif kind == Events.EPOCH and worker in self.bars:
            bar = self.bars[worker]
            bar.set_postfix(loss=f"{payload['loss']:.3f}", acc=f"{payload['acc']:.3f}")
            bar.update(1)
            step = max(1, bar.total // 4)
            if self.enabled and not self.tty and (payload["epoch"] % step == 0):
                self.write(
                    f"  {payload['name']}: epoch {payload['epoch']}/{bar.total} "
                    f"loss {payload['loss']:.4f} acc {payload['acc']:.4f}"
                )
        elif kind == Events.TESTING and worker in self.bars:
            self.bars[worker].set_description(f"{payload['name']} testing")
        elif kind == Events.END and worker in self.bars:
            self.bars.pop(worker).close()

    def finished(self, outcome: RunOutcome) -> None:
        """A result, not progress: printed even with progress off."""
        self.done += 1
        self.runs.update(1)
        stage = f"{self.stage} " if self.stage else ""
        prefix = "" if self.tty else f"[{stage}{self.done}/{self.total}] "
        self.write(prefix + outcome_line(outcome))

    def write(self, line: str) -> None:
        tqdm.write(line, file=sys.stdout)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.runs.close()
