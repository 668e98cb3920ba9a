"""The runner's hooks: what a callback sees after each step and epoch (`TrainState`), and the `Callback` to override.

Methods that act during training (ReLoRA merges and restarts) implement a `Callback` and report under
`record["hooks"][<their name>]`; the runner imports the methods, never the other way round, so a method
names these types for checking only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelerate import Accelerator

from peftbench.methods import Adapted


@dataclass
class TrainState:
    """What a callback sees: the step just done and the objects it may act on."""

    step: int
    epoch: int
    total_steps: int
    adapted: Adapted
    optimizer: Any
    scheduler: Any
    accelerator: Accelerator
    record: dict[str, Any]  # callbacks report under record["hooks"][<their name>]
    loss: float | None = None


class Callback:
    """Override what you need; both are called on every process."""

    def on_step_end(self, state: TrainState) -> None:
        """After each optimizer step (and scheduler step)."""

    def on_epoch_end(self, state: TrainState, entry: dict[str, Any]) -> None:
        """After each epoch's evaluation; `entry` is the epoch's record entry."""
