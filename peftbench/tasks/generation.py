"""Data-to-text generation with a causal LM (GPT-2): E2E, WebNLG, DART.

Format (the LoRA repository's `gpt2_encode.py --add_bos --add_eos`, inherited from prefix-tuning):

    source tokens  <|endoftext|>  " " + reference tokens  <|endoftext|>
    \\_________ prompt _________/  \\________________ target ______________/

The end-of-text token separates the source from the text and ends the text, so no new token is
needed and the model learns to stop. The loss covers the target only: the prompt and padding
have label -100. `prompt_length` is the prompt's length (source + separator): an infix method
inserts its positions there, in training and generation alike.

Training sees one example per (source, reference) pair, so an input with five references is five
examples. Evaluation generates once per unique source by beam search through `Adapted.generate`.
A call batches prompts of one length only, so nothing is padded: no position shift, no infix
misplaced by padding, the same result as one prompt at a time. Repeated n-grams are banned within
the generated text only, as in the LoRA repository's beam search. The new tokens are cut at
end-of-text or a newline, and each prediction is scored against all references of its source
with `generation_metrics`. A format whose examples carry categories (`scores_by_category`: WebNLG)
is also scored on its seen and unseen categories (seen: present in the train split): `bleu_seen`,
`bleu_unseen`, and `bleu` for all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList

from peftbench.errors import UsageError
from peftbench.models.arch import dims_of
from peftbench.tasks.data_to_text import D2TExample, seen_categories
from peftbench.tasks.metrics import generation_metrics
from peftbench.tasks.pipeline import Pipeline, split_suffix
from peftbench.tasks.readers import FORMATS

log = logging.getLogger(__name__)

#: metric-name suffixes of WebNLG's category groups ('' = all inputs)
GROUPS = ("", "_seen", "_unseen")


class _UnpaddedPromptsFilter(logging.Filter):
    """Drops GPT-2's "input_ids may be padded" warning: our prompts end with end-of-text (= pad) but are never padded."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "passing in an `attention_mask`" not in record.getMessage()


@contextlib.contextmanager
def _quiet_padding_warning() -> Iterator[None]:
    """`generate` drops an all-ones attention mask, and the model then warns about padding it cannot see."""
    logger, noise = logging.getLogger("transformers.modeling_utils"), _UnpaddedPromptsFilter()
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


class NoRepeatNGramInOutput(LogitsProcessor):
    """Ban a token that would repeat an n-gram of the generated text; the prompt does not count.

    The LoRA repository's beam search (`gpt2_beam.py`, from fairseq) looks for repeats in the
    generated tokens only. `transformers`' `no_repeat_ngram_size` also counts the prompt, which
    would forbid copying a 4-gram of the source (a restaurant's or a person's name) into the text.
    `prompt_length` is the same for every row: a `generate` call holds prompts of one length.
    """

    def __init__(self, ngram_size: int, prompt_length: int):
        self.ngram_size, self.prompt_length = ngram_size, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        n, length = self.ngram_size, generated.shape[-1]
        if length < n:  # no complete n-gram yet
            return scores
        windows = generated.unfold(1, n, 1)  # rows x (length - n + 1) x n
        prefix = generated[:, length - n + 1 :].unsqueeze(1)  # the last n - 1 tokens
        rows, starts = (windows[..., :-1] == prefix).all(-1).nonzero(as_tuple=True)
        scores[rows, windows[rows, starts, -1]] = -float("inf")
        return scores


class GenerationPipeline(Pipeline):
    evaluate_every_epoch = False  # beam search is costly: the final model is scored on the test split

    # ------------------------------------------------------------------ encoding

    @property
    def separator_id(self) -> int:
        """End-of-text: between source and text, and at the end of the text."""
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise UsageError(f"the tokenizer of a generation task needs an end-of-text token ({type(self.tokenizer).__name__} has none)")
        return int(eos)

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    def _source_ids(self, sources: list[str]) -> dict[str, list[int]]:
        unique = list(dict.fromkeys(sources))
        return dict(zip(unique, self._token_ids(unique), strict=True))

    def prompt(self, source_ids: list[int], limit: int) -> list[int]:
        """Source + separator, the source cut at its end so the prompt holds `limit` tokens at most."""
        return [*source_ids[: max(limit - 1, 0)], self.separator_id]

    def encode(self, examples: list[D2TExample]) -> list[dict[str, Any]]:
        """One training feature per (source, reference): input ids, token labels, prompt length."""
        pairs = [(e.source, ref) for e in examples for ref in e.references]
        sources = self._source_ids([s for s, _ in pairs])
        targets = self._token_ids([" " + ref for _, ref in pairs])
        max_len = self.training.max_seq_len
        features = []
        for (source, _), target in zip(pairs, targets, strict=True):
            prompt = self.prompt(sources[source], max_len - 1)  # room for one target token at least
            target = [*target, self.separator_id][: max_len - len(prompt)]
            features.append({"input_ids": prompt + target, "labels": [-100] * len(prompt) + target, "prompt_length": len(prompt)})
        return features

    # ------------------------------------------------------------------ generation

    def stop_ids(self) -> list[int]:
        """End-of-text, and newline tokens (a prediction is one line: it is cut there anyway)."""
        stops = [self.separator_id]
        for text in ("\n", "\n\n"):
            ids = self._token_ids([text])[0]
            if len(ids) == 1 and ids[0] not in stops:
                stops.append(ids[0])
        return stops

    def decode(self, new_tokens: list[int], stops: list[int]) -> str:
        """The generated text up to the first stop token or newline, whitespace collapsed."""
        for i, token in enumerate(new_tokens):
            if token in stops:
                new_tokens = new_tokens[:i]
                break
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        assert isinstance(text, str)  # one sequence of ids decodes to one string
        return " ".join(text.split("\n", 1)[0].split())

    def generate_kwargs(self, prompt_length: int) -> dict[str, Any]:
        """Decoding settings for one `generate` call on prompts of `prompt_length` tokens."""
        gen = self.generation
        kwargs: dict[str, Any] = {"max_new_tokens": gen.max_new_tokens, "do_sample": False, "num_beams": gen.num_beams}
        if gen.num_beams > 1:  # beam-only setting; with one beam it would only draw a warning
            kwargs["length_penalty"] = gen.length_penalty
        if gen.no_repeat_ngram_size:
            kwargs["logits_processor"] = LogitsProcessorList([NoRepeatNGramInOutput(gen.no_repeat_ngram_size, prompt_length)])
        return kwargs

    def prompt_limit(self, model: Any) -> int:
        """Prompt tokens that fit: max_seq_len, and the model's positions less new and inserted ones."""
        inner = getattr(model, "model", model)
        positions = dims_of(inner.config).max_positions
        limit = self.training.max_seq_len
        if positions:
            extra = model.config.extra_positions() if hasattr(model, "method") else 0  # an Adapted model: its method's config
            limit = min(limit, positions - self.generation.max_new_tokens - extra)
        if limit < 2:
            raise UsageError(
                f"no room for a prompt: max_new_tokens {self.generation.max_new_tokens} fills the model's {positions} positions"
            )
        return limit

    def prompts_per_call(self) -> int:
        """Prompts per `generate` call: `eval_batch_size` rows hold num_beams rows per prompt."""
        return max(1, self.training.eval_batch_size // self.generation.num_beams)

    @torch.no_grad()
    def predict(self, model: Any, sources: list[str], device: torch.device, desc: str = "generate") -> list[str]:
        """One generated text per source, by beam search.

        A `generate` call takes prompts of one length only, so nothing is padded: positions,
        attention and an infix after the prompt are exactly as for a single prompt.
        """
        inner = getattr(model, "model", model)
        was_training = inner.training
        inner.eval()
        limit, stops = self.prompt_limit(model), self.stop_ids()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.separator_id
        source_ids = self._source_ids(sources)
        prompts = [self.prompt(source_ids[s], limit) for s in sources]
        by_length: dict[int, list[int]] = {}
        for i in sorted(range(len(prompts)), key=lambda i: len(prompts[i])):
            by_length.setdefault(len(prompts[i]), []).append(i)
        size = self.prompts_per_call()
        calls = [idx[k : k + size] for idx in by_length.values() for k in range(0, len(idx), size)]
        predictions = [""] * len(prompts)
        try:
            with _quiet_padding_warning(), self.progress(len(prompts), desc) as progress:
                for call in calls:
                    length = len(prompts[call[0]])
                    input_ids = torch.tensor([prompts[i] for i in call], device=device)
                    out = model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        prompt_lengths=torch.full((len(call),), length, device=device),
                        eos_token_id=stops,
                        pad_token_id=pad,
                        **self.generate_kwargs(length),
                    )
                    for row, i in enumerate(call):
                        predictions[i] = self.decode(out[row, length:].tolist(), stops)
                    progress.update(len(call))
        finally:
            inner.train(was_training)
        return predictions

    def progress(self, inputs: int, desc: str) -> tqdm:
        """The decoding bar: inputs done of all, elapsed and time left (beam search is the slow part of a run).

        Updated after every `generate` call; `max_eval_examples` and `num_beams` (via `--set`) shorten it.
        """
        label = f"{desc} (beam {self.generation.num_beams})" if self.generation.num_beams > 1 else desc
        return tqdm(total=inputs, desc=label, unit="input", mininterval=1.0, leave=False, dynamic_ncols=True)

    # ------------------------------------------------------------------ evaluation

    def eval_examples(self, examples: list[D2TExample], seen: set[str] | None) -> list[D2TExample]:
        """Unique sources (references of a repeated source merged), cut to `max_eval_examples`.

        With category groups (WebNLG) the cut takes seen and unseen inputs in turn, so a small
        evaluation still scores both groups.
        """
        merged: dict[str, D2TExample] = {}
        for e in examples:
            if e.source in merged:
                first = merged[e.source]
                refs = first.references + tuple(r for r in e.references if r not in first.references)
                merged[e.source] = D2TExample(first.source, refs, first.category)
            else:
                merged[e.source] = e
        unique = list(merged.values())
        n = self.training.max_eval_examples
        if not n or n >= len(unique):
            return unique
        if seen is None:
            return unique[:n]
        indexed = list(enumerate(unique))
        groups = [[p for p in indexed if p[1].category in seen], [p for p in indexed if p[1].category not in seen]]
        chosen: list[tuple[int, D2TExample]] = []
        while len(chosen) < n:
            for group in groups:
                if group and len(chosen) < n:
                    chosen.append(group.pop(0))
        return [e for _, e in sorted(chosen, key=lambda p: p[0])]

    def evaluate(self, model: Any, splits: dict[str, list[Any]], device: torch.device) -> dict[str, float]:
        seen = seen_categories(splits.get("train", [])) if FORMATS.get(self.spec.format).scores_by_category else None
        scores: dict[str, float] = {}
        for split in self.spec.eval_splits:
            examples = self.eval_examples(splits[split], seen)
            predictions = self.predict(model, [e.source for e in examples], device, desc=f"generate {self.spec.name}/{split}")
            suffix = split_suffix(split, self.spec.eval_splits)
            groups = GROUPS if seen is not None else ("",)
            for group in tqdm(groups, desc=f"score {self.spec.name}/{split}", unit="group", leave=False):
                # a group other than "" only when `seen` is known
                picked = [
                    i for i, e in enumerate(examples) if not group or (seen is not None and (e.category in seen) == (group == "_seen"))
                ]
                if not picked:
                    log.warning("%s/%s: no %s inputs to score", self.spec.name, split, group.lstrip("_"))
                    continue
                group_scores = generation_metrics(
                    [predictions[i] for i in picked], [list(examples[i].references) for i in picked], self.spec.metrics
                )
                scores.update({name + group + suffix: value for name, value in group_scores.items()})
        return scores
