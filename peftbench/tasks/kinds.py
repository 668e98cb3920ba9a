"""The pipeline of a task's kind: what the runner asks for, so `pipeline` (the interface) never imports its kinds."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from peftbench.config.schema import GenerationConfig, TrainConfig
from peftbench.tasks.base import TaskSpec
from peftbench.tasks.classification import ClassificationPipeline
from peftbench.tasks.generation import GenerationPipeline
from peftbench.tasks.pipeline import Pipeline


def make_pipeline(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, training: TrainConfig, generation: GenerationConfig) -> Pipeline:
    """Classification and regression share one pipeline; generation (E2E, WebNLG, DART) has its own."""
    if spec.kind == "generation":
        return GenerationPipeline(spec, tokenizer, training, generation)
    return ClassificationPipeline(spec, tokenizer, training, generation)
