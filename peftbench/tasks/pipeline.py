"""What the runner needs from a task, whatever its kind: encode, collate, evaluate.

The runner holds a `Pipeline` and never asks which kind of task it runs; classification and
regression live in `classification.py`, data-to-text generation in `generation.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from peftbench.config.schema import GenerationConfig, TrainConfig
from peftbench.tasks.base import TaskSpec


class Pipeline(ABC):
    accelerator: Any = None  # set by the runner: with several processes, evaluation shards and gathers

    def __init__(self, spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, training: TrainConfig, generation: GenerationConfig):
        self.spec = spec
        self.tokenizer = tokenizer
        self.training = training
        self.generation = generation

    @abstractmethod
    def encode(self, examples: list[Any]) -> list[dict[str, Any]]:
        """Examples -> token features (lists), each with a `prompt_length` (where an infix goes)."""

    def collate(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Right-pad a batch; `labels` padding is -100 (ignored by the loss) for token labels."""
        width = max(len(f["input_ids"]) for f in features)
        pad = self.tokenizer.pad_token_id
        batch = {
            "input_ids": torch.tensor([f["input_ids"] + [pad] * (width - len(f["input_ids"])) for f in features]),
            "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in features]),
            "prompt_lengths": torch.tensor([f["prompt_length"] for f in features]),
        }
        labels = [f["labels"] for f in features]
        if isinstance(labels[0], list):
            batch["labels"] = torch.tensor([x + [-100] * (width - len(x)) for x in labels])
        else:
            batch["labels"] = torch.tensor(labels, dtype=torch.float if self.spec.kind == "regression" else torch.long)
        return batch

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (with the configured label smoothing) or, for regression, mean squared error.

        Token labels (generation) are shifted by one: position t predicts token t+1.
        """
        if self.spec.kind == "regression":
            return F.mse_loss(logits.squeeze(-1).float(), labels.float())
        if labels.dim() == 2:
            logits, labels = logits[:, :-1], labels[:, 1:]
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            labels.reshape(-1),
            ignore_index=-100,
            label_smoothing=self.training.label_smoothing,
        )

    evaluate_every_epoch = True  # generation scores the final model only (beam search is costly)

    @abstractmethod
    def evaluate(self, model: Any, splits: dict[str, list[Any]], device: torch.device) -> dict[str, float]:
        """Score the model on the task's evaluation splits: metric name -> raw value."""


def split_suffix(split: str, splits: tuple[str, ...]) -> str:
    """Metric-name suffix for one of several eval splits (MNLI: `_matched`, `_mismatched`)."""
    return "" if len(splits) == 1 else "_" + split.removeprefix("validation_").removeprefix("test_")
