"""GLUE-style sequence classification and regression (STS-B): one or two texts -> a label."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from peftbench.tasks import metrics
from peftbench.tasks.pipeline import Pipeline, split_suffix


class ClassificationPipeline(Pipeline):
    def encode(self, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        firsts = [e["text_a"] for e in examples]
        seconds = [e["text_b"] for e in examples]
        pairs = seconds[0] is not None
        enc = self.tokenizer(firsts, seconds if pairs else None, truncation=True, max_length=self.training.max_seq_len)
        return [
            {"input_ids": ids, "prompt_length": len(ids), "labels": e["label"]} for ids, e in zip(enc["input_ids"], examples, strict=True)
        ]

    @torch.no_grad()
    def predict(self, model: Any, examples: list[dict[str, Any]], device: torch.device) -> np.ndarray:
        """Predictions in example order; with several processes each scores its shard and all are gathered."""
        features = self.encode(examples)
        # a list serves as a map-style dataset; torch annotates the argument as Dataset
        loader: DataLoader[dict[str, Any]] = DataLoader(
            features,  # type: ignore[arg-type]
            batch_size=self.training.eval_batch_size,
            collate_fn=self.collate,
        )
        if self.accelerator is not None:
            loader = self.accelerator.prepare_data_loader(loader)
        outputs = []
        for batch in loader:
            batch.pop("labels")
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits.float()
            out = logits.squeeze(-1) if self.spec.kind == "regression" else logits.argmax(-1)
            if self.accelerator is not None:
                out = self.accelerator.gather_for_metrics(out)
            outputs.append(out.cpu())
        return torch.cat(outputs).numpy()

    def evaluate(self, model: Any, splits: dict[str, list[Any]], device: torch.device) -> dict[str, float]:
        scores = {}
        for split in self.spec.eval_splits:
            examples = splits[split]
            if self.training.max_eval_examples:
                examples = examples[: self.training.max_eval_examples]
            predictions = self.predict(model, examples, device)
            labels = np.array([e["label"] for e in examples])
            suffix = split_suffix(split, self.spec.eval_splits)
            for name in self.spec.metrics:
                scores[name + suffix] = float(getattr(metrics, name)(predictions, labels))
        return scores
