"""A small synthetic GLUE data set in the exact file format of each task, for runs without downloads.

``write_glue_sample`` writes one task's files (train, dev and the unlabelled test files) in GLUE's
original layout, made to be learnable by a tiny model in a few hundred steps. The copy under
``peftbench/data/samples/glue`` was written by it (seed 0) and is what ``--data-dir sample`` reads,
through the very readers in ``peftbench.tasks.glue`` that read the real files.

Each task draws its label first (balanced), then text that carries that label through a rule
a tiny model can pick up: sentiment words, word order, changed entities, overlapping words,
negation or unverifiable detail. Sentences stay under ~25 words. Rows are unique across the
task's files, so dev never repeats train.

Pair tasks (MRPC, QQP, STS-B) take the values that make two texts differ from the second half
of each word pool, which unchanged text never uses. A randomly initialised tiny model does not
learn to compare words across two sentences from 200 examples (tried: dev stays at chance while
train is memorised); it does learn which words signal a change, so the sample stays learnable.

Everything is drawn from ``random.Random`` seeded by a string, so a seed gives the same bytes on
every platform. Regenerate the bundled sample (peftbench installed or on PYTHONPATH):

    python tools/samples/glue.py   # rewrites peftbench/data/samples/glue/
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from peftbench.tasks.glue import GLUE_FORMATS, SAMPLE_ROOT, get_format

#: Rows per file, by file kind (MNLI's two dev and two test files get as many each).
SAMPLE_SIZES = {"train": 200, "dev": 60, "test": 20}

_NAMES = (
    "Alice", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Rosa", "Sami", "Tomas", "Yuki",
)  # fmt: skip
_CITIES = ("Lisbon", "Oslo", "Lima", "Cairo", "Quito", "Seoul", "Dublin", "Nairobi", "Perth", "Krakow", "Hanoi", "Bogota")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "March", "April", "June", "August", "September", "October", "December")
_COMPANIES = ("Northwind", "Globex", "Initech", "Vandelay", "Acme", "Hooli", "Soylent", "Wonka")

Row = list[str]
Draw = tuple[int, str, str | None]  # (label, text_a, text_b)


def write_glue_sample(out_dir: Path, task: str, seed: int = 0) -> None:
    """Write the task's synthetic sample into ``out_dir/<Folder>/``, in GLUE's exact file layout.

    Deterministic for (task, seed): the bundled copy can be checked byte for byte against a fresh one.
    """
    fmt = get_format(task)
    rng = random.Random(f"peftbench-glue-{task}-{seed}")
    folder = Path(out_dir) / fmt.folder
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[tuple[str, str | None]] = set()
    for name in [f for _, f in fmt.splits] + list(fmt.test_files):
        kind = _file_kind(name)
        draws = _draw_unique(rng, task, kind, SAMPLE_SIZES[kind.split("_")[0]], seen)
        rows = _SAMPLE_ROWS[task](rng, draws, kind)
        header = None if not fmt.has_header and kind != "test" else fmt.columns_for(name)
        _write_tsv(folder / name, header, rows)


def _file_kind(name: str) -> str:
    """'train', 'dev', 'test', with '_mismatched' for MNLI's other genres."""
    stem = name.removesuffix(".tsv")
    base = stem.split("_")[0]
    return f"{base}_mismatched" if stem.endswith("_mismatched") else base


def _draw_unique(rng: random.Random, task: str, kind: str, n: int, seen: set) -> list[Draw]:
    """n labelled texts, balanced over the labels, none seen before in this task."""
    maker, n_labels = _MAKERS[task]
    labels = [i % n_labels for i in range(n)]
    rng.shuffle(labels)
    draws = []
    for label in labels:
        for _ in range(1000):
            label_out, a, b = maker(rng, label, kind)
            if (a, b) not in seen:
                break
        else:  # the templates are far richer than the sample; this means a generator bug
            raise RuntimeError(f"cannot draw a new {task} example for label {label}")
        seen.add((a, b))
        draws.append((label_out, a, b))
    return draws


def _write_tsv(path: Path, header: tuple[str, ...] | None, rows: list[Row]) -> None:
    """Tab-joined lines, LF endings, no quoting: GLUE's own convention."""
    lines = ([list(header)] if header else []) + rows
    for fields in lines:
        bad = [f for f in fields if "\t" in f or "\n" in f or "\r" in f]
        if bad:
            raise ValueError(f"sample field contains a tab or newline: {bad[0]!r}")
    path.write_text("".join("\t".join(fields) + "\n" for fields in lines), encoding="utf-8", newline="")


# CoLA: grammatical templates vs the same sentence with its word order broken.

_COLA_VERBS = (
    ("read", "read"), ("paint", "painted"), ("wash", "washed"), ("sell", "sold"), ("buy", "bought"),
    ("fix", "fixed"), ("open", "opened"), ("carry", "carried"), ("find", "found"), ("move", "moved"),
)  # fmt: skip
_COLA_OBJECTS = ("box", "chair", "letter", "bicycle", "window", "book", "lamp", "basket", "door", "painting")
_COLA_ADJS = ("old", "red", "heavy", "small", "new", "wooden", "broken", "green")
_COLA_INTRANSITIVE = ("slept", "danced", "laughed", "waited", "sang", "worked")
_COLA_SOURCES = ("gj04", "bc01", "ks08", "r-67", "c_13", "m_02", "w_80", "clc95", "ad03", "b_73", "sks13")


def _cola_sentence(rng: random.Random) -> list[str]:
    """A short grammatical sentence as words (the final period is added later)."""
    n, n2 = rng.sample(_NAMES, 2)
    base, past = rng.choice(_COLA_VERBS)
    obj, adj = rng.choice(_COLA_OBJECTS), rng.choice(_COLA_ADJS)
    templates = (
        f"{n} {past} the {adj} {obj}",
        f"{n} gave {n2} a {adj} {obj} yesterday",
        f"We think that {n} {past} the {obj}",
        f"{n} and {n2} {rng.choice(_COLA_INTRANSITIVE)} in the garden",
        f"The {obj} that {n} {past} was {adj}",
        f"{n} wanted to {base} the {obj} before dinner",
    )
    return rng.choice(templates).split()


def _cola_corrupt(rng: random.Random, words: list[str]) -> list[str]:
    """Break the word order: a full shuffle or one swapped neighbour pair, never a no-op."""
    lowered = [w if w in _NAMES else w.lower() for w in words]
    for _ in range(100):
        out = list(lowered)
        if rng.random() < 0.6:
            rng.shuffle(out)
        else:
            i = rng.randrange(len(out) - 1)
            out[i], out[i + 1] = out[i + 1], out[i]
        if out != lowered:
            return [out[0][:1].upper() + out[0][1:], *out[1:]]
    raise RuntimeError("cannot corrupt a CoLA sentence")


def _make_cola(rng: random.Random, label: int, kind: str) -> Draw:
    words = _cola_sentence(rng)
    if label == 0:
        words = _cola_corrupt(rng, words)
    return label, " ".join(words) + ".", None


def _rows_cola(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
    if kind == "test":
        return [[str(i), a] for i, (_, a, _) in enumerate(draws)]
    return [[rng.choice(_COLA_SOURCES), str(y), "" if y else "*", a] for y, a, _ in draws]


# SST-2: lower-cased, tokenized movie-review phrases built from one polarity's words.

_SST_POS = (
    "wonderful", "brilliant", "charming", "delightful", "moving", "superb", "gripping", "funny",
    "warm", "clever", "beautiful", "touching", "smart", "lively", "memorable",
)  # fmt: skip
_SST_NEG = (
    "dull", "boring", "clumsy", "tedious", "awful", "bland", "messy", "shallow",
    "tiresome", "predictable", "lifeless", "silly", "sloppy", "flat", "forgettable",
)  # fmt: skip
_SST_POS_VP = ("stays with you", "earns its laughs", "rewards your patience", "lifts the spirit", "never lets go")
_SST_NEG_VP = ("wastes its cast", "drags on forever", "goes nowhere", "falls apart", "tests your patience")
_SST_NOUNS = ("film", "plot", "script", "story", "cast", "ending", "soundtrack", "movie", "comedy", "drama", "performance")
_SST_ADVS = ("truly", "remarkably", "consistently", "quite", "often", "simply", "utterly")


def _make_sst2(rng: random.Random, label: int, kind: str) -> Draw:
    adjs, vps = (_SST_POS, _SST_POS_VP) if label else (_SST_NEG, _SST_NEG_VP)
    a1, a2 = rng.sample(adjs, 2)
    noun, adv, vp = rng.choice(_SST_NOUNS), rng.choice(_SST_ADVS), rng.choice(vps)
    templates = (
        f"the {noun} is {adv} {a1} ",
        f"{_article(a1)} {a1} , {a2} {noun} ",
        f"it 's {_article(a1)} {a1} {noun} that {vp} . ",
        f"{adv} {a1} from start to finish . ",
        f"the {noun} feels {a1} and {a2} . ",
        f"{_article(adv)} {adv} {a1} {noun} ",
        f"this {a1} {noun} {vp} ",
    )
    return label, rng.choice(templates), None


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _rows_sst2(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
    if kind == "test":
        return [[str(i), a] for i, (_, a, _) in enumerate(draws)]
    return [[a, str(y)] for y, a, _ in draws]


# MRPC: a news fact said two ways; non-paraphrases change a name, place or number.

_MRPC_TEMPLATES = (
    (
        "{name} said {co} will open a new office in {city} in {month} .",
        "{co} will launch a new office in {city} in {month} , {name} said .",
    ),
    (
        "{co} cut {num} jobs in {city} last year , the company said .",
        "The company said it eliminated {num} positions in {city} last year .",
    ),
    (
        '"We expect strong sales in {month} ," said {name} , chief executive of {co} .',
        "{name} , the head of {co} , said sales should be strong in {month} .",
    ),
    (
        "Shares of {co} rose {num} cents to close at ${price} on {day} .",
        "{co} stock gained {num} cents on {day} , closing at ${price} .",
    ),
    (
        "A court in {city} fined {co} ${num} million on {day} .",
        'On {day} , {co} was ordered by a {city} court to pay a "${num} million" fine .',
    ),
)


_MRPC_POOLS = {
    "name": _NAMES, "co": _COMPANIES, "city": _CITIES, "month": _MONTHS, "day": _DAYS,
    "num": tuple(str(i) for i in range(12, 100)),
}  # fmt: skip


def _kept(pool: tuple[str, ...]) -> tuple[str, ...]:
    """The half of a pool that unchanged text uses."""
    return pool[: len(pool) // 2]


def _changed(pool: tuple[str, ...]) -> tuple[str, ...]:
    """The half of a pool that only replacements use (see the note above)."""
    return pool[len(pool) // 2 :]


def _change_slots(rng: random.Random, text: str, slots: dict[str, str], pools: dict[str, tuple[str, ...]]) -> dict:
    """Slots with one or two of those used in text replaced by a value of the same kind."""
    used = [k for k in pools if "{" + k + "}" in text]
    changed = dict(slots)
    for key in rng.sample(used, min(len(used), rng.choice((1, 1, 2)))):
        changed[key] = rng.choice(_changed(pools[key]))
    return changed


def _make_mrpc(rng: random.Random, label: int, kind: str) -> Draw:
    first, second = rng.choice(_MRPC_TEMPLATES)
    slots = {key: rng.choice(_kept(pool)) for key, pool in _MRPC_POOLS.items()}
    slots["price"] = f"{rng.randrange(10, 90)}.{rng.randrange(10, 99)}"
    other = slots if label else _change_slots(rng, second, slots, _MRPC_POOLS)
    a, b = first.format(**slots), second.format(**other)
    return (label, a, b) if rng.random() < 0.5 else (label, b, a)


def _rows_mrpc(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
    ids = [str(rng.randrange(100000, 3500000)) for _ in range(2 * len(draws))]
    if kind == "test":
        return [[str(i), ids[2 * i], ids[2 * i + 1], a, b] for i, (_, a, b) in enumerate(draws)]
    return [[str(y), ids[2 * i], ids[2 * i + 1], a, b] for i, (y, a, b) in enumerate(draws)]


# QQP: the same question asked two ways vs a question on another subject or with another intent.

_QQP_TOPICS = (
    "Python", "chess", "guitar", "French", "calculus", "painting", "swimming", "cooking",
    "photography", "statistics", "piano", "Spanish", "drawing", "machine learning",
)  # fmt: skip
_QQP_INTENTS = (
    ("How can I learn {t} quickly?", "What is the fastest way to learn {t}?", "How do I get good at {t} fast?"),
    ("Why is {t} so hard for beginners?", "What makes {t} difficult to learn?"),
    ("What are the best books about {t}?", "Which books should I read to understand {t}?"),
    ("Is {t} worth learning in {y}?", "Should I still learn {t} in {y}?"),
    ('What does "{w}" mean in {t}?', 'What is the meaning of the word "{w}" in {t}?'),
    ("How much time does it take to master {t}?", "How many years do you need to become an expert in {t}?"),
    ("What is the best city to study {t}, {c} or {c2}?", "Should I study {t} in {c} or in {c2}?"),
)
_QQP_WORDS = ("scale", "tempo", "gambit", "loop", "limit", "stroke", "tone", "frame")


def _make_qqp(rng: random.Random, label: int, kind: str) -> Draw:
    intent = rng.choice(_QQP_INTENTS)
    c, c2 = rng.sample(_CITIES, 2)
    slots = {
        "t": rng.choice(_kept(_QQP_TOPICS)), "y": str(rng.randrange(2015, 2025)), "w": rng.choice(_QQP_WORDS),
        "c": c, "c2": c2,
    }  # fmt: skip
    q1, q2 = rng.sample(intent, 2)
    if label:
        return label, q1.format(**slots), q2.format(**slots)
    if rng.random() < 0.5:  # same intent, another subject
        other = dict(slots, t=rng.choice(_changed(_QQP_TOPICS)))
        return label, q1.format(**slots), q2.format(**other)
    other_intent = rng.choice([i for i in _QQP_INTENTS if i is not intent])  # same subject, another question
    return label, q1.format(**slots), rng.choice(other_intent).format(**slots)


def _rows_qqp(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
    if kind == "test":
        return [[str(i), a, b] for i, (_, a, b) in enumerate(draws)]
    start = rng.randrange(1000, 400000)
    rows = []
    for i, (y, a, b) in enumerate(draws):
        row_id, qid = start + i, 2 * (start + i) + 1
        rows.append([str(row_id), str(qid), str(qid + 1), a, b, str(y)])
    return rows


# STS-B: captions whose score is the overlap of their content words, 5 * |A & B| / |A | B|.

_STS_SUBJECTS = ("man", "woman", "boy", "girl", "dog", "cat", "chef", "child", "student", "farmer")
_STS_ADJS = ("young", "old", "tall", "small", "happy", "tired")
_STS_ACTIONS = (
    ("playing", ("guitar", "piano", "flute", "violin", "drum")),
    ("slicing", ("onion", "tomato", "potato", "carrot", "melon")),
    ("riding", ("bike", "horse", "scooter", "skateboard")),
    ("reading", ("book", "newspaper", "letter", "magazine")),
    ("carrying", ("box", "bag", "basket", "ladder")),
    ("painting", ("fence", "wall", "picture", "boat")),
)
_STS_PLACES = ("park", "kitchen", "street", "garden", "room", "field", "station")
_STS_SLOTS = ("adj", "subject", "action", "place")  # an action change changes verb and object


def _sts_caption(s: dict[str, str], reorder: bool, with_place: bool = True) -> str:
    verb, obj = s["action"].split(" ")
    art = _article(s["adj"]).capitalize()
    core = f"{s['adj']} {s['subject']} is {verb} {_article(obj)} {obj}"
    if not with_place:
        return f"{art} {core}."
    if reorder:
        return f"In the {s['place']}, {art.lower()} {core}."
    return f"{art} {core} in the {s['place']}."


def _sts_slots(rng: random.Random, half: Callable[[tuple], tuple]) -> dict[str, str]:
    """A caption's content words, from the kept or the changed half of each pool."""
    verb, objects = rng.choice(half(_STS_ACTIONS))
    return {
        "adj": rng.choice(half(_STS_ADJS)), "subject": rng.choice(half(_STS_SUBJECTS)),
        "action": f"{verb} {rng.choice(objects)}", "place": rng.choice(half(_STS_PLACES)),
    }  # fmt: skip


def _sts_content(s: dict[str, str], with_place: bool) -> set[str]:
    words = {s["adj"], s["subject"], *s["action"].split(" ")}
    return words | {s["place"]} if with_place else words


def _make_stsb(rng: random.Random, label: int, kind: str) -> Draw:
    """Changes `label` of the four slots (0-4); the score follows from the words, not the label."""
    first = _sts_slots(rng, _kept)
    fresh = _sts_slots(rng, _changed)
    second = dict(first)
    for key in rng.sample(_STS_SLOTS, label):
        second[key] = fresh[key]
    with_place = rng.random() < 0.85
    a = _sts_caption(first, reorder=False)
    b = _sts_caption(second, reorder=rng.random() < 0.3, with_place=with_place)
    words_a, words_b = _sts_content(first, True), _sts_content(second, with_place)
    score = round(5.0 * len(words_a & words_b) / len(words_a | words_b), 3)
    milli = round(score * 1000)  # the score in thousandths, so Draw stays integer
    return (milli, a, b) if rng.random() < 0.5 else (milli, b, a)


def _rows_stsb(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
    genres = (("main-captions", "MSRvid", "2012test"), ("main-captions", "images", "2014"), ("main-forums", "deft-forum", "2014"))
    rows = []
    for i, (milli, a, b) in enumerate(draws):
        genre, filename, year = rng.choice(genres)
        row = [str(i), genre, filename, year, f"{rng.randrange(1, 1500):04d}", "none", "none", a, b]
        rows.append(row if kind == "test" else [*row, f"{milli / 1000:.3f}"])
    return rows


# NLI (MNLI, RTE): a premise scene and a hypothesis that follows from it, adds unverifiable detail,
# or denies it.

_NLI_ITEMS = ("apples", "books", "flowers", "tickets", "shoes", "lamps", "stamps", "maps")
_NLI_THINGS = ("housing", "transport", "school", "water", "park", "library")
_NLI_SCENES = (
    (
        "{n} bought {k} {item} at the market in {c} on {d}.",
        ("{n} bought some {item}.", "{n} was at a market in {c}.", "Someone bought {item} on {d}."),
        ("{n} bought the {item} as a gift for a friend.", "{n} goes to that market every week.", "The {item} were expensive."),
        ("{n} did not buy any {item}.", "{n} has never been to {c}.", "The market in {c} was closed on {d}."),
    ),
    (
        "{n} took the train from {c} to {c2} after the meeting.",
        ("{n} travelled to {c2}.", "{n} left {c} by train.", "There was a meeting before {n} left {c}."),
        ("{n} was late for the train.", "{n} visits {c2} every year.", "The meeting in {c} was about money."),
        ("{n} stayed in {c} after the meeting.", "{n} drove a car to {c2}.", "There was no meeting that day."),
    ),
    (
        "The council in {c} approved the new {thing} plan on {d}.",
        ("A {thing} plan was approved.", "The council approved a plan on {d}.", "{c} has a new {thing} plan."),
        ("The {thing} plan will cost a lot of money.", "The vote on the {thing} plan was close.", "Many people in {c} wanted the plan."),
        ("The council rejected the {thing} plan.", "No plan was approved on {d}.", "The council in {c} never votes on plans."),
    ),
    (
        "{n} and {n2} cooked dinner for {k} guests in {c}.",
        ("{n} cooked a meal.", "There were guests at the dinner.", "{n2} helped to make dinner."),
        ("The guests loved the food.", "{n} is a chef in {c}.", "{n} and {n2} are old friends."),
        ("Nobody cooked dinner.", "{n} ate alone that night.", "There were no guests in {c}."),
    ),
)
_MNLI_GENRES = ("fiction", "government", "slate", "telephone", "travel")
_MNLI_GENRES_MISMATCHED = ("facetoface", "letters", "nineeleven", "oup", "verbatim")
_MNLI_LETTER = ("e", "n", "c")


def _nli_pair(rng: random.Random, label: int) -> tuple[str, str]:
    """(premise, hypothesis) for label 0 entailment, 1 neutral, 2 contradiction."""
    premise, *hypotheses = rng.choice(_NLI_SCENES)
    n, n2 = rng.sample(_NAMES, 2)
    c, c2 = rng.sample(_CITIES, 2)
    slots = {
        "n": n, "n2": n2, "c": c, "c2": c2, "d": rng.choice(_DAYS), "k": str(rng.randrange(2, 20)),
        "item": rng.choice(_NLI_ITEMS), "thing": rng.choice(_NLI_THINGS),
    }  # fmt: skip
    return premise.format(**slots), rng.choice(hypotheses[label]).format(**slots)


def _make_mnli(rng: random.Random, label: int, kind: str) -> Draw:
    return (label, *_nli_pair(rng, label))


def _parse_tokens(sentence: str) -> list[str]:
    """Words with the final punctuation split off, as in the Stanford parses."""
    body, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".?!" else (sentence, "")
    return body.replace(",", " ,").split() + ([end] if end else [])


def _binary_parse(sentence: str) -> str:
    tokens = _parse_tokens(sentence)
    return f"( ( {tokens[0]} ) ( {' '.join(tokens[1:])} ) )"


def _parse(sentence: str) -> str:
    def tag(word: str) -> str:
        if word in {".", ",", "?", "!"}:
            return word
        if word.isdigit():
            return "CD"
        if word.lower() in {"the", "a", "an", "some", "no", "any"}:
            return "DT"
        return "NNP" if word[0].isupper() else "NN"

    return "(ROOT (S " + " ".join(f"({tag(w)} {w})" for w in _parse_tokens(sentence)) + "))"


def _rows_mnli(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
    genres = _MNLI_GENRES_MISMATCHED if kind.endswith("_mismatched") else _MNLI_GENRES
    rows = []
    for i, (y, a, b) in enumerate(draws):
        prompt = rng.randrange(10000, 140000)
        gold = GLUE_FORMATS["mnli"].label_values[y]
        row = [str(i), str(prompt), f"{prompt}{_MNLI_LETTER[y]}", rng.choice(genres)]
        row += [_binary_parse(a), _binary_parse(b), _parse(a), _parse(b), a, b]
        if kind.startswith("test"):
            rows.append(row)
        elif kind == "train":
            rows.append([*row, gold, gold])
        else:
            rows.append([*row, *_annotators(rng, y), gold])
    return rows


def _annotators(rng: random.Random, gold: int) -> list[str]:
    """Five validation labels with the gold one in the majority, as in MNLI's dev files."""
    names = GLUE_FORMATS["mnli"].label_values
    labels = [names[gold]] * 5
    for pos in rng.sample(range(1, 5), rng.choice((0, 0, 1, 2))):
        labels[pos] = names[(gold + rng.randrange(1, 3)) % 3]
    return labels


def _make_rte(rng: random.Random, label: int, kind: str) -> Draw:
    """not_entailment is half neutral, half contradiction, as in RTE's two-way collapse."""
    premise, hypothesis = _nli_pair(rng, 0 if label == 0 else rng.choice((1, 2)))
    return label, premise, hypothesis


def _rows_index_label(task: str) -> Callable[[random.Random, list[Draw], str], list[Row]]:
    """QNLI and RTE: index, text_a, text_b, string label."""
    values = GLUE_FORMATS[task].label_values

    def rows(rng: random.Random, draws: list[Draw], kind: str) -> list[Row]:
        if kind == "test":
            return [[str(i), a, b] for i, (_, a, b) in enumerate(draws)]
        return [[str(i), a, b, values[y]] for i, (y, a, b) in enumerate(draws)]

    return rows


# QNLI: a question and a sentence that answers it, or one about the same person that does not.

_QNLI_SUBJECTS = ("physics", "law", "music", "medicine", "history", "architecture")
_QNLI_INSTRUMENTS = ("violin", "cello", "trumpet", "piano", "harp")
_QNLI_FACTS = (
    ("Where did {n} study {s}?", "{n} studied {s} at the University of {c} before moving abroad."),
    ("When did {n} move to {c}?", "In {y}, {n} moved to {c} to work as a teacher."),
    ("What instrument did {n} play as a child?", "As a child, {n} played the {i} in a local band."),
    ("Who founded the {s} museum in {c}?", "The {s} museum in {c} was founded by {n} in {y}."),
    ("How many books did {n} write?", "{n} wrote {k} books, most of them about {s}."),
)
_QNLI_FILLERS = (
    '{n} was known as "a careful and quiet worker".',
    "Many people in {c} still remember {n}.",
    "{n} later wrote about those years in a letter to a friend.",
)


def _make_qnli(rng: random.Random, label: int, kind: str) -> Draw:
    slots = {
        "n": rng.choice(_NAMES), "s": rng.choice(_QNLI_SUBJECTS), "c": rng.choice(_CITIES),
        "y": str(rng.randrange(1890, 2010)), "i": rng.choice(_QNLI_INSTRUMENTS), "k": str(rng.randrange(2, 30)),
    }  # fmt: skip
    question, answer = rng.choice(_QNLI_FACTS)
    if label == 1:  # a sentence about the same person that answers another question, or nothing
        others = [fact[1] for fact in _QNLI_FACTS if fact[1] != answer]
        answer = rng.choice(others) if rng.random() < 0.5 else rng.choice(_QNLI_FILLERS)
    return label, question.format(**slots), answer.format(**slots)


_MAKERS: dict[str, tuple[Callable[[random.Random, int, str], Draw], int]] = {
    "cola": (_make_cola, 2),
    "sst2": (_make_sst2, 2),
    "mrpc": (_make_mrpc, 2),
    "qqp": (_make_qqp, 2),
    "stsb": (_make_stsb, 5),
    "mnli": (_make_mnli, 3),
    "qnli": (_make_qnli, 2),
    "rte": (_make_rte, 2),
}
_SAMPLE_ROWS: dict[str, Callable[[random.Random, list[Draw], str], list[Row]]] = {
    "cola": _rows_cola,
    "sst2": _rows_sst2,
    "mrpc": _rows_mrpc,
    "qqp": _rows_qqp,
    "stsb": _rows_stsb,
    "mnli": _rows_mnli,
    "qnli": _rows_index_label("qnli"),
    "rte": _rows_index_label("rte"),
}


def write_all_samples(out_dir: Path = SAMPLE_ROOT, seed: int = 0) -> None:
    """Regenerate the bundled sample for every task."""
    for task in GLUE_FORMATS:
        write_glue_sample(out_dir, task, seed)


if __name__ == "__main__":
    write_all_samples()
