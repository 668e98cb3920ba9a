"""Data-to-text generation: the prompt/target format, the collate step, beam search, an end-to-end run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from peftbench.config.schema import GenerationConfig, TrainConfig
from peftbench.methods import METHODS
from peftbench.models.build import build_model
from peftbench.models.presets import resolve_model
from peftbench.models.tokenizer import tiny_tokenizer
from peftbench.records.store import read_record
from peftbench.tasks.base import data_source, load_splits, task_specs
from peftbench.tasks.data_to_text import D2TExample
from peftbench.tasks.generation import GenerationPipeline, NoRepeatNGramInOutput

CPU = torch.device("cpu")
TOKENIZER = tiny_tokenizer("gpt2")
EOS = TOKENIZER.eos_token_id


def pipeline(task: str = "e2e", training: dict | None = None, generation: dict | None = None) -> GenerationPipeline:
    spec = task_specs().get(task)
    return GenerationPipeline(spec, TOKENIZER, TrainConfig(**{**spec.training, **(training or {})}), GenerationConfig(**(generation or {})))


def ids(text: str) -> list[int]:
    return TOKENIZER(text, add_special_tokens=False)["input_ids"]


EXAMPLE = D2TExample("name[The Vaults], eatType[pub]", ("The Vaults is a pub.", "There is a pub called The Vaults."))


def test_encode_is_source_eos_space_target_eos_with_the_prompt_masked():
    features = pipeline().encode([EXAMPLE])
    assert len(features) == 2  # one training example per reference
    source = ids(EXAMPLE.source)
    for feature, reference in zip(features, EXAMPLE.references, strict=True):
        target = [*ids(" " + reference), EOS]
        assert feature["input_ids"] == [*source, EOS, *target]
        assert feature["prompt_length"] == len(source) + 1
        assert feature["labels"] == [-100] * (len(source) + 1) + target


def test_encode_keeps_the_prompt_and_cuts_the_target_at_max_seq_len():
    (feature, _) = pipeline(training={"max_seq_len": 12}).encode([EXAMPLE])
    assert len(feature["input_ids"]) == len(feature["labels"]) == 12
    assert feature["input_ids"][feature["prompt_length"] - 1] == EOS
    long = D2TExample(" ".join(f"key{i}[value {i}]" for i in range(40)), ("Short.",))
    (cut,) = pipeline(training={"max_seq_len": 16}).encode([long])
    assert len(cut["input_ids"]) == 16 and cut["prompt_length"] == 15 and cut["labels"][-1] != -100


def test_collate_pads_inputs_and_labels_with_the_padding_ignored():
    p = pipeline()
    features = p.encode([EXAMPLE, D2TExample("name[X]", ("X.",))])
    batch = p.collate(features)
    width = max(len(f["input_ids"]) for f in features)
    assert batch["input_ids"].shape == batch["labels"].shape == (3, width)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        assert batch["labels"][row, :n].tolist() == f["labels"]
        assert (batch["labels"][row, n:] == -100).all() and (batch["attention_mask"][row, n:] == 0).all()
        assert (batch["input_ids"][row, n:] == TOKENIZER.pad_token_id).all()
    assert batch["prompt_lengths"].tolist() == [f["prompt_length"] for f in features]
    # the loss sees target tokens only: the shifted labels have exactly the target positions
    shifted = batch["labels"][:, 1:]
    assert int((shifted != -100).sum()) == sum(len(f["input_ids"]) - f["prompt_length"] for f in features)


def test_decode_stops_at_end_of_text_and_newline():
    p = pipeline()
    stops = p.stop_ids()
    assert EOS in stops
    assert p.decode([*ids(" A pub."), EOS, *ids(" more")], stops) == "A pub."
    assert p.decode(ids(" A pub.\nNext line"), [EOS]) == "A pub."
    assert p.decode([EOS], stops) == ""


def test_eval_examples_merge_repeated_sources_and_balance_webnlg_groups():
    p = pipeline(training={"max_eval_examples": 2})
    a, b = D2TExample("s1", ("r1",), "Airport"), D2TExample("s1", ("r2", "r1"), "Airport")
    unique = pipeline().eval_examples([a, b, D2TExample("s2", ("r3",))], None)
    assert [(e.source, e.references) for e in unique] == [("s1", ("r1", "r2")), ("s2", ("r3",))]
    examples = [D2TExample(f"s{i}", ("r",), "Airport") for i in range(4)] + [D2TExample("u", ("r",), "Artist")]
    assert [e.source for e in p.eval_examples(examples, {"Airport"})] == ["s0", "u"]
    assert [e.source for e in p.eval_examples(examples, None)] == ["s0", "s1"]


@pytest.fixture(scope="module")
def tiny_lora():
    model = build_model(resolve_model("tiny-gpt2"), "generation", 1, seed=0)
    method = METHODS.get("lora")
    return method.apply(model, method.config_cls())


@pytest.mark.parametrize("task", ["e2e", "webnlg", "dart"])
def test_generate_and_evaluate_on_tiny_gpt2(task, tiny_lora):
    spec = task_specs().get(task)
    splits = load_splits(spec, data_source(spec, "sample", True))
    p = pipeline(task, training={"max_eval_examples": 4}, generation={"num_beams": 2, "max_new_tokens": 6})
    sources = [e.source for e in splits["test"][:3]]
    tiny_lora.model.train()
    predictions = p.predict(tiny_lora, sources, CPU)
    assert tiny_lora.model.training  # generation runs in eval mode and puts the mode back
    assert len(predictions) == 3 and all(isinstance(text, str) and "\n" not in text for text in predictions)
    tiny_lora.model.eval()
    assert predictions == p.predict(tiny_lora, sources, CPU)  # beam search is deterministic
    scores = p.evaluate(tiny_lora, splits, CPU)
    groups = ("", "_seen", "_unseen") if task == "webnlg" else ("",)
    assert list(scores) == [m + g for g in groups for m in spec.metrics]
    assert all(isinstance(v, float) for v in scores.values())


def test_generate_calls_pass_prompt_lengths_and_unpadded_prompts(tiny_lora, monkeypatch):
    """Prompts of one length share a call; every call is unpadded and tells the method where prompts end."""
    calls = []
    real = type(tiny_lora).generate

    def spy(self, *args, **kwargs):
        calls.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone(), kwargs["prompt_lengths"].clone()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny_lora), "generate", spy)
    p = pipeline(generation={"num_beams": 2, "max_new_tokens": 3})
    sources = ["name[A]", "name[B]", "name[The Vaults], eatType[pub]"]
    p.predict(tiny_lora, sources, CPU)
    assert sum(len(c[0]) for c in calls) == 3
    for input_ids, mask, lengths in calls:
        assert bool(mask.all()) and lengths.tolist() == [input_ids.shape[1]] * len(input_ids)
        assert (input_ids[:, -1] == EOS).all()


def banned_by_hand(tokens: list[int], n: int) -> set[int]:
    """The LoRA repository's rule (fairseq's): a token that would complete an n-gram already generated."""
    if len(tokens) < n:
        return set()
    return {tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tokens[i : i + n - 1] == tokens[len(tokens) - n + 1 :]}


def test_no_repeat_ngram_looks_at_the_generated_tokens_only():
    prompt = [7, 8, 9, 10, 5]
    processor = NoRepeatNGramInOutput(3, prompt_length=len(prompt))
    scores = processor(torch.tensor([[*prompt, 7, 8]]), torch.zeros(1, 20))
    assert torch.isfinite(scores).all()  # "7 8 9" is in the prompt, not in the output: 9 stays allowed
    scores = processor(torch.tensor([[*prompt, 7, 8, 9, 7, 8]]), torch.zeros(1, 20))
    assert torch.isinf(scores[0]).nonzero().flatten().tolist() == [9]
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        rows = torch.randint(0, 4, (3, 12), generator=generator)
        scores = NoRepeatNGramInOutput(3, prompt_length=2)(rows, torch.zeros(3, 4))
        for row in range(3):
            banned = set(torch.isinf(scores[row]).nonzero().flatten().tolist())
            assert banned == banned_by_hand(rows[row, 2:].tolist(), 3)


def test_a_model_that_learned_the_format_generates_the_reference():
    """Training and generation agree on the format: a memorised text comes back exactly."""
    torch.manual_seed(0)
    model = build_model(resolve_model("tiny-gpt2"), "generation", 1, seed=0)
    adapted = METHODS.get("ft").apply(model, METHODS.get("ft").config_cls())
    examples = [
        D2TExample("name[The Vaults], eatType[pub]", ("The Vaults is a pub.",)),
        D2TExample("name[Blue Spice], eatType[coffee shop]", ("Blue Spice is a coffee shop.",)),
    ]
    p = pipeline(training={"max_seq_len": 64}, generation={"num_beams": 2, "max_new_tokens": 16})
    batch = p.collate(p.encode(examples))
    labels = batch.pop("labels")
    optimizer = torch.optim.AdamW(adapted.trainable_parameters().values(), lr=3e-3)
    model.train()
    for _ in range(120):
        p.loss(adapted(**batch).logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert p.predict(adapted, [e.source for e in examples], CPU) == [e.references[0] for e in examples]


def test_evaluation_is_only_at_the_end(cli, results):
    res = cli(
        "run", "--method", "lora", "--task", "e2e", "--model", "tiny-gpt2", "--epochs", "3",
        "--set", "max_train_examples=4", "--set", "batch_size=4", "--set", "max_eval_examples=2", "--set", "num_beams=1",
    )  # fmt: skip
    assert res.code == 0, res.err
    (path,) = list(Path(results / "scratch").glob("*.json"))
    epochs = read_record(path)["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]  # one step an epoch
    assert [bool(e["metrics"]) for e in epochs] == [False, False, True]  # beam search scores the final model only


def test_tiny_e2e_run_writes_a_finished_record(cli, results):
    res = cli(
        "run", "--method", "lora", "--task", "e2e", "--model", "tiny-gpt2", "--max-steps", "2",
        "--set", "max_eval_examples=4", "--set", "num_beams=2",
    )  # fmt: skip
    assert res.code == 0, res.err
    (path,) = list(Path(results / "scratch").glob("*.json"))
    record = read_record(path)
    assert record["status"] == "finished" and record["error"] is None
    assert list(record["metrics"]) == ["bleu", "nist", "meteor", "rouge_l", "cider"]
    assert all(m["higher_is_better"] is True for m in record["metrics"].values())
    assert len(record["epochs"]) == 1 and record["epochs"][0]["metrics"]
    assert record["config"]["generation"]["num_beams"] == 2 and record["config"]["generation"]["length_penalty"] == 0.9


def test_tiny_webnlg_run_records_ter_as_lower_is_better(cli, results):
    res = cli(
        "run", "--method", "lora", "--task", "webnlg", "--model", "tiny-gpt2", "--max-steps", "1",
        "--set", "max_eval_examples=4", "--set", "num_beams=1", "--set", "max_new_tokens=4",
    )  # fmt: skip
    assert res.code == 0, res.err
    (path,) = list(Path(results / "scratch").glob("*.json"))
    metrics = read_record(path)["metrics"]
    assert set(metrics) == {f"{m}{g}" for m in ("bleu", "meteor", "ter") for g in ("", "_seen", "_unseen")}
    for name, entry in metrics.items():
        assert entry["higher_is_better"] is (not name.startswith("ter")), name


def test_decoding_shows_a_bar_with_inputs_done_and_time_left(tiny_lora, monkeypatch):
    """A long beam search must say how far it is and how long is left, updated after every `generate` call."""
    import io
    import re

    from tqdm import tqdm as std_tqdm

    from peftbench.tasks import generation

    bars = []

    class Recording(std_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "file": io.StringIO()})
            self.meters = []
            bars.append(self)

        def update(self, n=1):
            super().update(n)
            self.meters.append(self.format_meter(**self.format_dict))

    monkeypatch.setattr(generation, "tqdm", Recording)
    p = pipeline(training={"eval_batch_size": 2}, generation={"num_beams": 2, "max_new_tokens": 3})  # one prompt per call
    sources = ["name[A]", "name[B]", "name[The Vaults], eatType[pub]"]
    p.predict(tiny_lora, sources, CPU, desc="generate e2e/test")
    (bar,) = bars
    assert bar.total == 3 and bar.n == 3 and len(bar.meters) == 3  # one update per call
    assert bar.meters[0].startswith("generate e2e/test (beam 2):")
    assert all(re.search(r"\d/3 \[\d\d:\d\d<\d\d:\d\d", meter) for meter in bar.meters)  # elapsed < time left
