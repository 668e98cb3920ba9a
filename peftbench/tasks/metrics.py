"""Task metrics: GLUE classification/regression scores and corpus-level data-to-text scores.

GLUE (LoRA paper, Table 2): accuracy, F1, Matthews correlation (CoLA), Pearson/Spearman (STS-B).
Data-to-text (Tables 3, 13, 14): BLEU, NIST, METEOR, ROUGE-L, CIDEr (E2E) and TER (WebNLG,
DART), computed the way the official E2E scorer (tuetschek/e2e-metrics, run by the LoRA
repository with its Python MT-Eval) does, so our numbers sit beside the paper's:

- BLEU: sacrebleu, 13a tokenisation, lowercased, as mteval-v13a and the E2E scorer's Python
  MT-Eval (case-insensitive); on the E2E dev set both BLEU and NIST agree with it to 1e-12.
- NIST: mteval-v13a's definition on the same lowercased 13a tokens: a hypothesis n-gram is
  clipped by its largest count in any one reference, information weights come from all
  references of the corpus, the length penalty uses the average reference length. nltk's
  `corpus_nist` scores each segment against its single best reference instead (7.41 instead
  of 8.58 on the E2E dev set with one reference held out as the hypothesis), so it is not used.
- METEOR 1.5, ROUGE-L, CIDEr: pycocoevalcap 1.2 after the Stanford PTB tokeniser (lowercased,
  punctuation tokens dropped), as COCOEvalCap and the E2E scorer do. Both tokeniser and METEOR
  run `java`. CIDEr's IDF comes from the references of the scored corpus (the official
  behaviour), so a corpus of one example always scores 0.
- TER: sacrebleu defaults (tercom tokenisation, case-insensitive), best reference per segment.

Scores are stored raw: BLEU 0-100 as sacrebleu gives it, NIST ~8-9 for good E2E systems,
METEOR, ROUGE-L and TER 0-1, CIDEr ~2.5; reports rescale them to each paper table.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from peftbench.errors import UsageError
from peftbench.registry import Registry

__all__ = [
    "GENERATION_METRICS",
    "LABEL_METRICS",
    "METRICS",
    "Metric",
    "accuracy",
    "check_generation_metrics",
    "f1",
    "generation_metrics",
    "label_metrics",
    "matthews",
    "metric_for",
    "nist",
    "pearson",
    "spearman",
]

@dataclass(frozen=True)
class Metric:
    """What every consumer of a score needs to know about its metric, in one place.

    The runner stores `higher_is_better` beside each value; reports multiply by `paper_scale` to
    print the number the way the paper's tables do (GLUE as percentages, data-to-text as computed)
    and pool seeds by `pooling` as the paper does (GLUE: the median over seeds, data-to-text: the
    mean); regression checks call a change within `tolerance` (raw units) noise unless seeds say
    otherwise. The compute functions: `LABEL_METRICS` (from labels) and `generation_metrics` (text).
    """

    name: str
    higher_is_better: bool
    paper_scale: float
    tolerance: float
    description: str
    pooling: str = "median"  # how seeds of one configuration pool into one number: "median" or "mean"


METRICS: Registry[Metric] = Registry("metric")
for _metric in (
    Metric("accuracy", True, 100.0, 0.005, "fraction of correct labels (GLUE; paper: %)"),
    Metric("f1", True, 100.0, 0.005, "F1 of the positive class (MRPC, QQP; paper: %)"),
    Metric("matthews", True, 100.0, 0.01, "Matthews correlation (CoLA; paper: x100)"),
    Metric("pearson", True, 100.0, 0.005, "Pearson correlation (STS-B; paper: x100)"),
    Metric("spearman", True, 100.0, 0.005, "Spearman correlation (STS-B; paper: x100)"),
    Metric("bleu", True, 1.0, 0.5, "corpus BLEU, 0-100 (sacrebleu, 13a, lowercased)", "mean"),
    Metric("nist", True, 1.0, 0.05, "NIST (mteval-v13a definition)", "mean"),
    Metric("meteor", True, 1.0, 0.005, "METEOR 1.5, 0-1", "mean"),
    Metric("rouge_l", True, 1.0, 0.005, "ROUGE-L F, 0-1", "mean"),
    Metric("cider", True, 1.0, 0.02, "CIDEr (IDF from the scored corpus)", "mean"),
    Metric("ter", False, 1.0, 0.005, "translation edit rate, 0-1 (lower is better)", "mean"),
):
    METRICS.add(_metric.name, _metric)


def metric_for(name: str) -> Metric:
    """The metric of a score name, also of a suffixed variant (`ter_unseen`, `accuracy_matched`).

    The longest registered base name wins, so `rouge_l_seen` is ROUGE-L, not something called `rouge`.
    """
    bases = [m for m in METRICS if name == m or name.startswith(m + "_")]
    if not bases:
        METRICS.get(name)  # raises with the known names and a suggestion
    return METRICS.get(max(bases, key=len))


GENERATION_METRICS = ("bleu", "nist", "meteor", "rouge_l", "cider", "ter")
_JAVA_METRICS = ("meteor", "rouge_l", "cider")  # through pycocoevalcap and its Java tools


# --- classification and regression (sklearn / scipy imported lazily: 2 s the CLI should not pay)


def _pair(preds: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, y = np.asarray(preds).ravel(), np.asarray(labels).ravel()
    if len(p) != len(y):
        raise UsageError(f"metrics: {len(p)} predictions but {len(y)} labels")
    if len(p) == 0:
        raise UsageError("metrics: no predictions to score")
    return p, y


def accuracy(preds: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of exact matches (most GLUE tasks)."""
    from sklearn.metrics import accuracy_score

    p, y = _pair(preds, labels)
    return float(accuracy_score(y, p))


def f1(preds: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Binary F1 of class 1 (MRPC, QQP); 0 when there is no positive to find or none predicted."""
    from sklearn.metrics import f1_score

    p, y = _pair(preds, labels)
    return float(f1_score(y, p, pos_label=1, average="binary", zero_division=0.0))


def matthews(preds: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Matthews correlation (CoLA): robust to CoLA's class imbalance; 0 for a constant predictor."""
    from sklearn.metrics import matthews_corrcoef

    p, y = _pair(preds, labels)
    return float(matthews_corrcoef(y, p))


def pearson(preds: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Pearson r (STS-B); NaN when either side is constant, where r is undefined."""
    from scipy.stats import pearsonr

    p, y = _pair(preds, labels)
    return float(pearsonr(p.astype(float), y.astype(float)).statistic)


def spearman(preds: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Spearman rank correlation (STS-B); NaN when either side is constant."""
    from scipy.stats import spearmanr

    p, y = _pair(preds, labels)
    return float(spearmanr(p, y).statistic)


LABEL_METRICS: dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews": matthews,
    "pearson": pearson,
    "spearman": spearman,
}


def label_metrics(preds: npt.ArrayLike, labels: npt.ArrayLike, names: Sequence[str]) -> dict[str, float]:
    """The named classification/regression metrics of one prediction set, as a task spec lists them."""
    unknown = [n for n in names if n not in LABEL_METRICS]
    if unknown:
        raise UsageError(f"unknown metric {', '.join(unknown)}: choose from {', '.join(LABEL_METRICS)}")
    return {n: LABEL_METRICS[n](preds, labels) for n in names}


# --- data-to-text


def check_generation_metrics(names: Sequence[str]) -> None:
    """Fail before any training if a metric is unknown or cannot run here (no pycocoevalcap, no java)."""
    unknown = [n for n in names if n not in GENERATION_METRICS]
    if unknown:
        raise UsageError(f"unknown metric {', '.join(unknown)}: choose from {', '.join(GENERATION_METRICS)}")
    java = [n for n in names if n in _JAVA_METRICS]
    if not java:
        return
    try:
        import pycocoevalcap.meteor.meteor  # noqa: F401
    except ImportError as e:
        raise UsageError(f"{', '.join(java)} need pycocoevalcap: pip install pycocoevalcap==1.2") from e
    if shutil.which("java") is None:
        raise UsageError(
            f"{', '.join(java)} run Java (pycocoevalcap's tokeniser and METEOR 1.5) and there is "
            "no `java` on PATH: install a Java runtime (e.g. default-jre-headless) or drop them"
        )


def generation_metrics(predictions: list[str], references: list[list[str]], names: Sequence[str]) -> dict[str, float]:
    """Corpus-level scores of `predictions`, each against its own list of references (any number >= 1)."""
    check_generation_metrics(names)
    if len(predictions) != len(references):
        raise UsageError(f"metrics: {len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise UsageError("metrics: no predictions to score")
    for i, (pred, refs) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(pred, str):
            raise UsageError(f"metrics: prediction {i} is a {type(pred).__name__}, not a string")
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise UsageError(f"metrics: references[{i}] must be a non-empty list of strings, got {refs!r:.80}")

    scores: dict[str, float] = {}
    if "bleu" in names or "ter" in names:
        from sacrebleu.metrics import BLEU, TER

        # sacrebleu wants one stream per reference position; None marks a missing reference (which sacrebleu
        # skips, though it annotates the streams Sequence[Sequence[str]]: hence the ignores)
        streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(max(map(len, references)))]
        if "bleu" in names:
            scores["bleu"] = float(BLEU(lowercase=True, tokenize="13a").corpus_score(predictions, streams).score)  # type: ignore[arg-type]
        if "ter" in names:
            scores["ter"] = float(TER().corpus_score(predictions, streams).score) / 100  # type: ignore[arg-type]
    if "nist" in names:
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

        tok = Tokenizer13a()
        scores["nist"] = nist(
            [tok(p.lower()).split() for p in predictions], [[tok(r.lower()).split() for r in refs] for refs in references]
        )
    if any(n in names for n in _JAVA_METRICS):
        scores.update(_coco_metrics(predictions, references, [n for n in names if n in _JAVA_METRICS]))
    return {n: scores[n] for n in names}


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def nist(hypotheses: list[list[str]], references: list[list[list[str]]], n: int = 5) -> float:
    """NIST (Doddington 2002) as mteval-v13a computes it, on already tokenised text."""
    counts: Counter[tuple[str, ...]] = Counter()  # n-gram counts over every reference of the corpus
    for refs in references:
        for ref in refs:
            counts[()] += len(ref)
            for k in range(1, n + 1):
                counts.update(_ngrams(ref, k))
    # information weight: log2(count(w1..wn-1) / count(w1..wn)); the empty prefix counts all words
    info = {g: math.log2(counts[g[:-1]] / c) for g, c in counts.items() if g}
    gain, total = [0.0] * n, [0] * n
    hyp_len, ref_len = 0, 0.0
    for hyp, refs in zip(hypotheses, references, strict=True):
        for k in range(1, n + 1):
            most: Counter[tuple[str, ...]] = Counter()
            for ref in refs:
                most |= _ngrams(ref, k)  # | keeps the larger count: clip by the best single reference
            gain[k - 1] += sum(info[g] * c for g, c in (_ngrams(hyp, k) & most).items())
            total[k - 1] += max(len(hyp) - k + 1, 0)
        hyp_len += len(hyp)
        ref_len += sum(map(len, refs)) / len(refs)
    score = sum(g / t for g, t in zip(gain, total, strict=True) if t)
    ratio = hyp_len / ref_len if ref_len else 1.0
    beta = math.log(0.5) / math.log(1.5) ** 2  # penalty 0.5 when the output is 2/3 of the reference length
    penalty = 1.0 if ratio >= 1 else math.exp(beta * math.log(ratio) ** 2) if ratio > 0 else 0.0
    return score * penalty


def _coco_metrics(predictions: list[str], references: list[list[str]], names: list[str]) -> dict[str, float]:
    """METEOR / ROUGE-L / CIDEr from one tokeniser run (and the cached METEOR process)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    tokens = _ptb_tokenize(predictions + [r for refs in references for r in refs])
    res = {i: [tokens[i]] for i in range(len(predictions))}
    gts, start = {}, len(predictions)
    for i, refs in enumerate(references):
        gts[i], start = tokens[start : start + len(refs)], start + len(refs)
    scorers: dict[str, Callable[[], Any]] = {"meteor": _meteor, "rouge_l": Rouge, "cider": Cider}
    return {n: float(scorers[n]().compute_score(gts, res)[0]) for n in names}


def _ptb_tokenize(texts: list[str]) -> list[str]:
    """Lowercase and PTB-tokenise as COCOEvalCap does, dropping its punctuation tokens.

    pycocoevalcap's own PTBTokenizer writes a temporary file into site-packages (fails on a
    read-only install); this is the same java command fed through stdin.
    """
    from pycocoevalcap.tokenizer import ptbtokenizer as ptb

    jar = Path(ptb.__file__).with_name(ptb.STANFORD_CORENLP_3_4_1_JAR)
    cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", "-encoding", "utf-8"]
    lines = "".join(" ".join(t.split()) + "\n" for t in texts)  # one line per text, whatever it contains
    out = subprocess.run(cmd, input=lines.encode(), capture_output=True, check=True).stdout.decode()
    rows = out.split("\n")[: len(texts)]
    if len(rows) != len(texts):
        raise RuntimeError(f"PTB tokeniser returned {len(rows)} lines for {len(texts)} texts")
    return [" ".join(w for w in row.split() if w not in ptb.PUNCTUATIONS) for row in rows]


@functools.cache
def _meteor_process() -> Any:
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()


def _meteor() -> Any:
    """One METEOR JVM per process: it takes ~10 s to load its paraphrase table, then scores fast."""
    meteor = _meteor_process()
    if meteor.meteor_p.poll() is not None:  # the JVM died (killed, out of memory): start another
        _meteor_process.cache_clear()
        meteor = _meteor_process()
    return meteor
