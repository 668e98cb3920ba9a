"""Small synthetic E2E, WebNLG and DART datasets in the release formats, for runs without downloads.

The bundled samples (`peftbench/data/samples/`) let every method run a data-to-text task end to
end on a laptop in seconds, through the very readers that read the real files, so they must use
the real file names and formats. The texts are template realisations of the inputs (two or three
phrasings per attribute or relation), so a tiny model can actually learn them and the metrics
move. WebNLG's test split holds categories absent from train, as the real seen/unseen split does,
and keeps the enriched release's quirk of `<otriple>` elements inside `<modifiedtripleset>`; a few
train texts are flagged `toFix`, which the readers must drop. Annotations the readers ignore
(templates, trees, entity maps) are left out to keep the bundle small.

Everything is drawn from `random.Random` seeded by a string, so a seed gives the same bytes on
every platform. Regenerate the bundle (peftbench installed or on PYTHONPATH):

    python tools/samples/data_to_text.py [OUT_DIR]   # default: rewrites peftbench/data/samples/{e2e,webnlg,dart}/
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from peftbench.tasks.data_to_text import DART_STEMS, E2E_FILES, SAMPLES_DIR, WEBNLG_DIRS, webnlg_entity

#: Inputs per split, for every task.
SPLIT_SIZES = {"train": 60, "validation": 20, "test": 20}

Triple = tuple[str, str, str]


def write_samples(out_dir: Path, seed: int = 0) -> list[Path]:
    """Write `e2e/`, `webnlg/` and `dart/` under `out_dir`; return the files written, sorted."""
    out_dir = Path(out_dir)
    written = [
        *_write_e2e(out_dir / "e2e", random.Random(f"e2e/{seed}")),
        *_write_webnlg(out_dir / "webnlg", random.Random(f"webnlg/{seed}")),
        *_write_dart(out_dir / "dart", random.Random(f"dart/{seed}")),
    ]
    return sorted(written)


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _unique(draw: Callable[[], tuple], seen: set, tries: int = 1000) -> tuple:
    """Draw until an input not seen before comes up: no input may sit in two splits."""
    for _ in range(tries):
        item = draw()
        if item not in seen:
            seen.add(item)
            return item
    raise RuntimeError("the sample vocabulary is too small for the requested number of inputs")


def _pick_references(rng: random.Random, realise: Callable[[int], str], styles: int = 3) -> list[str]:
    """One to three distinct references, each a different phrasing style."""
    chosen = rng.sample(range(styles), rng.randint(1, 3))
    return list(dict.fromkeys(realise(style) for style in chosen))


# --------------------------------------------------------------------------- E2E

E2E_NAMES = (
    "The Copper Kettle", "Blue Lantern", "The Olive Grove", "Riverside Rest", "The Golden Hind",
    "Green Man", "The Wandering Fox", "Little Saffron", "The Old Mill", "Harbour Lights",
    "The Red Door", "Clover Café", "The Silver Spoon", "Bramble House", "The Crown and Anchor",
    "Moonrise", "The Lantern Room", "Juniper", "The Stag's Head", "Willow Tree",
)  # fmt: skip
E2E_VALUES = {
    "eatType": ("restaurant", "pub", "coffee shop"),
    "food": ("English", "French", "Italian", "Chinese", "Indian", "Japanese", "Fast food"),
    "priceRange": ("cheap", "moderate", "high", "less than £20", "£20-25", "more than £30"),
    "customer rating": ("low", "average", "high", "1 out of 5", "3 out of 5", "5 out of 5"),
    "area": ("city centre", "riverside"),
    "familyFriendly": ("yes", "no"),
}
E2E_ORDER = ("name", "eatType", "food", "priceRange", "customer rating", "area", "familyFriendly", "near")


def _e2e_mr(rng: random.Random) -> tuple[tuple[str, str], ...]:
    name = rng.choice(E2E_NAMES)
    chosen = rng.sample([*E2E_VALUES, "near"], rng.randint(2, 6))
    values = {"name": name}
    for key in chosen:
        pool = [n for n in E2E_NAMES if n != name] if key == "near" else E2E_VALUES[key]
        values[key] = rng.choice(pool)
    return tuple((key, values[key]) for key in E2E_ORDER if key in values)


def _with_article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _e2e_reference(mr: dict[str, str], style: int) -> str:
    name, food = mr["name"], mr.get("food")
    kind = mr.get("eatType", ("place", "venue", "spot")[style])
    described = f"{food} {kind}" if food else kind
    if style == 0:
        head = f"{name} is {_with_article(described)}"
    elif style == 1:
        head = f"There is {_with_article(described)} called {name}"
    else:
        head = f"{name} is {_with_article(kind)}" + (f" that serves {food} food" if food else "")
    if "area" in mr:
        head += (" in the {}", " in the {} area", " located in the {}")[style].format(mr["area"])
    if "near" in mr:
        head += (" near {}", " close to {}", " near {}")[style].format(mr["near"])
    sentences = [head + "."]
    if "priceRange" in mr:
        sentences.append(("Its prices are {}.", "Prices are {}.", "It has a {} price range.")[style].format(mr["priceRange"]))
    if "customer rating" in mr:
        rating = mr["customer rating"]
        sentences.append(("It has a {} customer rating.", "Customers rate it {}.", "Its customer rating is {}.")[style].format(rating))
    if "familyFriendly" in mr:
        friendly = mr["familyFriendly"] == "yes"
        options = (
            ("It is family-friendly.", "It is kid friendly.", "Children are welcome.")
            if friendly
            else ("It is not family-friendly.", "It is not kid friendly.", "It is not suitable for children.")
        )
        sentences.append(options[style])
    if style == 1:
        sentences[1:] = reversed(sentences[1:])
    return " ".join(sentences)


def _write_e2e(folder: Path, rng: random.Random) -> list[Path]:
    seen: set = set()
    written = []
    for split, count in SPLIT_SIZES.items():
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)  # the release's own dialect: comma, minimal quoting, CRLF
        writer.writerow(["mr", "ref"])
        for _ in range(count):
            mr = _unique(lambda: _e2e_mr(rng), seen)
            text = ", ".join(f"{key}[{value}]" for key, value in mr)
            for reference in _pick_references(rng, lambda style, mr=dict(mr): _e2e_reference(mr, style)):
                writer.writerow([text, reference])
        written.append(_write_text(folder / E2E_FILES[split], buffer.getvalue()))
    return written


# --------------------------------------------------------------------------- WebNLG


@dataclass(frozen=True)
class Relation:
    """A relation, the objects it takes, two phrasings ({s}, {o}; {ol}: lower-cased; {a_ol}: with a/an)."""

    name: str
    objects: tuple[str, ...]
    phrasings: tuple[str, str]


@dataclass(frozen=True)
class Category:
    name: str
    subjects: tuple[str, ...]
    relations: tuple[Relation, ...]


WEBNLG_SEEN = (
    Category("Airport", ("Aldermoor_Regional_Airport", "Brindle_Point_Airport", "Cressing_International_Airport"), (
        Relation("cityServed", ('"Ashford, Kent"', "Brindle_Point", "Cressing"),
                 ("{s} serves the city of {o}.", "{s} is the airport of {o}.")),
        Relation("runwayLength", ("1800.0", "2400.0", "3100.5"),
                 ("The runway length of {s} is {o}.", "{s} has a runway that is {o} long.")),
        Relation("elevationAboveTheSeaLevel_(in_metres)", ("12.0", "85.0", "140.0"),
                 ("{s} is {o} metres above sea level.", "{s} has an elevation of {o} metres.")),
        Relation("operatingOrganisation", ("Kent_Airport_Authority", "Northern_Air_Services"),
                 ("{s} is operated by {o}.", "The operator of {s} is {o}.")),
    )),
    Category("Astronaut", ("Mara_Velde", "Tomas_Erikson", "Alan_Fairweather"), (
        Relation("birthPlace", ("Lyon", '"Austin, Texas"', "Gdańsk"),
                 ("{s} was born in {o}.", "{s}'s birthplace is {o}.")),
        Relation("occupation", ("Test_pilot", "Engineer", "Physician"),
                 ("{s} worked as {a_ol}.", "{s} was {a_ol} by profession.")),
        Relation("mission", ("Orion_7", "Skylark_3", "Meridian_2"),
                 ("{s} was a crew member of {o}.", "{s} flew on the {o} mission.")),
    )),
    Category("Building", ("Harrow_Tower", "Marlow_House", "Quayside_Centre"), (
        Relation("location", ("Leeds", '"Harrow, London"', "Newcastle"),
                 ("{s} is located in {o}.", "{s} can be found in {o}.")),
        Relation("architect", ("Ruth_Calder", "Owen_Pryce", "Studio_Nine"),
                 ("{s} was designed by {o}.", "The architect of {s} is {o}.")),
        Relation("floorCount", ("12", "30", "45"),
                 ("{s} has {o} floors.", "There are {o} floors in {s}.")),
        Relation("completionDate", ("1998", "2004", "2015"),
                 ("{s} was completed in {o}.", "The construction of {s} finished in {o}.")),
    )),
    Category("City", ("Brindle_Point", "Cressing", "Eastwick_Falls"), (
        Relation("country", ("United_Kingdom", "Canada", "Norway"),
                 ("{s} is in {o}.", "{s} is a city in {o}.")),
        Relation("populationTotal", ("48211", "120500", "9800"),
                 ("{s} has a population of {o}.", "The population of {s} is {o}.")),
        Relation("leaderName", ("Ada_Morrow", "Piet_Haas", "Lena_Sorensen"),
                 ("The leader of {s} is {o}.", "{s} is led by {o}.")),
    )),
    Category("Food", ("Bramble_Tart", "Kettle_Stew", "Saffron_Buns"), (
        Relation("country", ("England", "Sweden", "Scotland"),
                 ("{s} comes from {o}.", "{s} is a dish from {o}.")),
        Relation("ingredient", ("Blackberry", "Potato", "Saffron"),
                 ("{s} contains {ol}.", "One ingredient of {s} is {ol}.")),
        Relation("course", ("Dessert", "Main_course", "Starter"),
                 ("{s} is served as {a_ol}.", "{s} is {a_ol}.")),
    )),
)  # fmt: skip
WEBNLG_UNSEEN = (
    Category("Artist", ("Nora_Quill", "The_Velvet_Arches", "Jonah_Reyes"), (
        Relation("genre", ("Jazz", "Folk_music", "Synth-pop"),
                 ("{s} plays {ol}.", "{s} performs {ol}.")),
        Relation("birthPlace", ("Dublin", '"Cork, Ireland"', "Seville"),
                 ("{s} was born in {o}.", "{s} comes from {o}.")),
        Relation("activeYearsStartYear", ("1999", "2008", "2013"),
                 ("{s} started performing in {o}.", "{s} has been active since {o}.")),
    )),
    Category("Politician", ("Edwin_Marsh", "Clara_Holt", "Viktor_Lund"), (
        Relation("party", ("Green_Party", "Liberal_Party", "Labour_Party"),
                 ("{s} is a member of the {o}.", "{s} belongs to the {o}.")),
        Relation("office", ("Mayor_of_Cressing", "Minister_of_Transport"),
                 ("{s} served as {o}.", "{s} held the office of {o}.")),
        Relation("birthPlace", ("Orlen", "Eastwick_Falls", "Leeds"),
                 ("{s} was born in {o}.", "{s}'s birthplace is {o}.")),
    )),
)  # fmt: skip


@dataclass(frozen=True)
class WebnlgInput:
    category: str
    triples: tuple[Triple, ...]
    references: tuple[str, ...]
    flagged: tuple[str, ...]  # texts marked toFix, which readers must drop


def _webnlg_triples(rng: random.Random, category: Category) -> tuple[Triple, ...]:
    subject = rng.choice(category.subjects)
    relations = rng.sample(category.relations, rng.choice((1, 1, 2, 2, 3)))
    return tuple((subject, rel.name, rng.choice(rel.objects)) for rel in relations)


def _webnlg_reference(category: Category, triples: Sequence[Triple], style: int) -> str:
    phrasings = {rel.name: rel.phrasings for rel in category.relations}
    ordered = list(reversed(triples)) if style == 2 else list(triples)
    sentences = []
    for subject, relation, obj in ordered:
        words = webnlg_entity(obj)
        template = phrasings[relation][style % 2]
        text = template.format(s=webnlg_entity(subject), o=words, ol=words.lower(), a_ol=_with_article(words.lower()))
        sentences.append(text[0].upper() + text[1:])
    return " ".join(sentences)


def _webnlg_input(rng: random.Random, category: Category, seen: set, flag: bool) -> WebnlgInput:
    triples = _unique(lambda: _webnlg_triples(rng, category), seen)
    references = _pick_references(rng, lambda style: _webnlg_reference(category, triples, style))
    flagged = (references[0].rsplit(" ", 2)[0],) if flag else ()  # a truncated text, as toFix ones are
    return WebnlgInput(category.name, triples, tuple(references), flagged)


def _webnlg_split_inputs(rng: random.Random, seen: set) -> dict[str, list[WebnlgInput]]:
    """Train and validation over the seen categories; test half seen, half unseen."""
    plan = {
        "train": [WEBNLG_SEEN[i % len(WEBNLG_SEEN)] for i in range(SPLIT_SIZES["train"])],
        "validation": [WEBNLG_SEEN[i % len(WEBNLG_SEEN)] for i in range(SPLIT_SIZES["validation"])],
        "test": [WEBNLG_SEEN[i % len(WEBNLG_SEEN)] for i in range(SPLIT_SIZES["test"] // 2)]
        + [WEBNLG_UNSEEN[i % len(WEBNLG_UNSEEN)] for i in range(SPLIT_SIZES["test"] - SPLIT_SIZES["test"] // 2)],
    }
    return {
        split: [_webnlg_input(rng, category, seen, flag=split == "train" and rng.random() < 0.1) for category in cats]
        for split, cats in plan.items()
    }


def _webnlg_file(inputs: Sequence[WebnlgInput], first_eid: int, triple_tag: str) -> str:
    """One category x size file of the enriched release (tab-indented, `<text>` inside `<lex>`)."""
    root = ET.Element("benchmark")
    entries = ET.SubElement(root, "entries")
    for number, item in enumerate(inputs, first_eid):
        entry = ET.SubElement(entries, "entry", category=item.category, eid=f"Id{number}", size=str(len(item.triples)))
        for set_tag, tag in (("originaltripleset", "otriple"), ("modifiedtripleset", triple_tag)):
            triple_set = ET.SubElement(entry, set_tag)
            for triple in item.triples:
                ET.SubElement(triple_set, tag).text = " | ".join(triple)
        texts = [("good", ref) for ref in item.references] + [("toFix", text) for text in item.flagged]
        for lid, (comment, text) in enumerate(texts, 1):
            lex = ET.SubElement(entry, "lex", comment=comment, lid=f"Id{lid}")
            ET.SubElement(lex, "text").text = text
    ET.indent(root, space="\t")
    return '<?xml version="1.0" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write_webnlg(folder: Path, rng: random.Random) -> list[Path]:
    written = []
    for split, inputs in _webnlg_split_inputs(rng, set()).items():
        groups: dict[tuple[int, str], list[WebnlgInput]] = {}
        for item in inputs:
            groups.setdefault((len(item.triples), item.category), []).append(item)
        eid = 1
        triple_tag = "otriple" if split == "test" else "mtriple"  # the enriched release's test quirk
        for (size, category), items in sorted(groups.items()):
            path = folder / WEBNLG_DIRS[split] / f"{size}triples" / f"{category}.xml"
            written.append(_write_text(path, _webnlg_file(items, eid, triple_tag)))
            eid += len(items)
    return written


# --------------------------------------------------------------------------- DART

DART_COLLEGES = ("Marlow College", "Eastwick University", "Saint Brendan's College", "Northgate Institute")
DART_NICKNAMES = ("Wolves", "Royals", "Herons", "Blue Hose")
DART_TOWNS = ("Marlow, Ohio", "Eastwick Falls", "Cressing", "Harrow")
DART_FILMS = ("The Long Harbour", "Glass Rivers", "Northern Lights", "The Quiet Year")
DART_ACTORS = ("Jeff Daniels", "Ada Morrow", "Tom Carver", "Lena Sorensen")
DART_ROLES = ("Jed Jenkins", "Host", "Captain Reyes", "the narrator")
DART_ATHLETES = ("Inars Kivlenieks", "Maria Lund", "Kenji Sato", "Ruth Calder")
DART_COUNTRIES = ("Latvia", "Sweden", "Japan", "Canada")
DART_EVENTS = ("100 m", "long jump", "marathon", "high jump")


def _dart_college(rng: random.Random) -> tuple[tuple[Triple, ...], Callable[[int], str], str]:
    college = rng.choice(DART_COLLEGES)
    facts = {
        "NICKNAME": rng.choice(DART_NICKNAMES),
        "LOCATION": rng.choice(DART_TOWNS),
        "JOINED": str(rng.choice(range(1950, 2011, 5))),
    }
    keys = rng.sample(sorted(facts), rng.randint(1, 3))
    triples = tuple((college, key, facts[key]) for key in keys)
    phrases = {
        "NICKNAME": ("whose nickname is the {}", "nicknamed the {}"),
        "LOCATION": ("located in {}", "from {}"),
        "JOINED": ("which joined in {}", "that joined in {}"),
    }

    def realise(style: int) -> str:
        parts = [phrases[key][style % 2].format(facts[key]) for key in (keys if style != 2 else keys[::-1])]
        return f"{college} is a school " + " and ".join(parts) + "."

    return triples, realise, "WikiSQL_decl_sents"


def _dart_film(rng: random.Random) -> tuple[tuple[Triple, ...], Callable[[int], str], str]:
    actor, film, role = rng.choice(DART_ACTORS), rng.choice(DART_FILMS), rng.choice(DART_ROLES)
    year = str(rng.choice(range(1980, 2021)))
    with_year = rng.random() < 0.5
    triples = (("[TABLECONTEXT]", "[TITLE]", actor), ("[TABLECONTEXT]", "TITLE", film), (film, "ROLE", role))
    triples += ((film, "YEAR", year),) if with_year else ()
    when = f" in {year}" if with_year else ""

    def realise(style: int) -> str:
        return (
            f"{actor} played {role} in {film}{when}.",
            f"In {film}, {role} was played by {actor}{when}.",
            f"{actor} appeared in {film} as {role}{when}.",
        )[style]

    return triples, realise, "WikiTableQuestions_lily"


def _dart_athlete(rng: random.Random) -> tuple[tuple[Triple, ...], Callable[[int], str], str]:
    athlete, country, event = rng.choice(DART_ATHLETES), rng.choice(DART_COUNTRIES), rng.choice(DART_EVENTS)
    rank = str(rng.randint(1, 8))
    triples = ((athlete, "COUNTRY", country), (athlete, "EVENT", event), (athlete, "RANK", rank))

    def realise(style: int) -> str:
        return (
            f"{athlete} of {country} finished in place {rank} in the {event}.",
            f"In the {event}, {athlete} from {country} ranked {rank}.",
            f"The athlete {athlete} represented {country} and was ranked {rank} in the {event}.",
        )[style]

    return triples, realise, "WikiTableQuestions_mturk"


def _dart_restaurant(rng: random.Random) -> tuple[tuple[Triple, ...], Callable[[int], str], str]:
    mr = dict(_e2e_mr(rng))
    triples = tuple((mr["name"], key, value) for key, value in mr.items() if key != "name")
    return triples, lambda style: _e2e_reference(mr, style), "e2e"


DART_DOMAINS = (_dart_college, _dart_film, _dart_athlete, _dart_restaurant)


@dataclass(frozen=True)
class DartInput:
    triples: tuple[Triple, ...]
    annotations: tuple[tuple[str, str], ...]  # (source, text)
    extended: bool | None  # subtree_was_extended; absent from many real entries


def _dart_input(rng: random.Random, seen: set) -> DartInput:
    domain = rng.choice(DART_DOMAINS)
    drawn: dict[tuple, tuple[Callable[[int], str], str]] = {}

    def draw() -> tuple:
        triples, realise, source = domain(rng)
        drawn[triples] = (realise, source)
        return triples

    triples = _unique(draw, seen)
    realise, source = drawn[triples]
    references = _pick_references(rng, realise)
    extended = rng.choice((None, False, True))
    return DartInput(triples, tuple((source, ref) for ref in references), extended)


def _dart_json(inputs: Sequence[DartInput]) -> str:
    items = []
    for item in inputs:
        entry: dict = {"tripleset": [list(t) for t in item.triples]}
        if item.extended is not None:
            entry["subtree_was_extended"] = item.extended
        entry["annotations"] = [{"source": source, "text": text} for source, text in item.annotations]
        items.append(entry)
    return json.dumps(items, indent=2, ensure_ascii=False)


def _dart_xml(inputs: Sequence[DartInput]) -> str:
    root = ET.Element("benchmark")
    entries = ET.SubElement(root, "entries")
    for number, item in enumerate(inputs, 1):
        entry = ET.SubElement(entries, "entry", category="MISC", eid=f"Id{number}", size=str(len(item.triples)))
        triple_set = ET.SubElement(entry, "modifiedtripleset")
        for triple in item.triples:
            ET.SubElement(triple_set, "mtriple").text = " | ".join(triple)
        for lid, (source, text) in enumerate(item.annotations, 1):
            ET.SubElement(entry, "lex", comment=source, lid=f"Id{lid}").text = text
    ET.indent(root, space="  ")
    return "<?xml version='1.0' encoding='utf-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"


def _write_dart(folder: Path, rng: random.Random) -> list[Path]:
    """Every split as JSON; the test split also as the release's WebNLG-style XML.

    The release ships every split in both formats; XML for one split is enough to exercise
    that reader (the folder loader prefers JSON), and the bundle stays small.
    """
    seen: set = set()
    written = []
    for split, count in SPLIT_SIZES.items():
        inputs = [_dart_input(rng, seen) for _ in range(count)]
        written.append(_write_text(folder / f"{DART_STEMS[split]}.json", _dart_json(inputs)))
        if split == "test":
            written.append(_write_text(folder / f"{DART_STEMS[split]}.xml", _dart_xml(inputs)))
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES_DIR
    for written_path in write_samples(target):
        print(written_path)
