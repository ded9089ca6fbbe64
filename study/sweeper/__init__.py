"""The sweep room: orchestration above the engine (which computes and launches) and the record (which
stores). A plan's status, the stages and their two-stage decisions, the tracked run (claim -> resume ->
compute with hooks that record -> release), preflight, and the sweep's finish (condition runs, summary).
`seedvar.sweep` (the API) calls `run_sweep` and only prints; a caller of the room gets a whole sweep."""

from seedvar.sweeper.sweep import run_sweep
from seedvar.sweeper.sweep_result import SweepResult

__all__ = ["SweepResult", "run_sweep"]
