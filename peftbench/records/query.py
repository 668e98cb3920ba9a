"""One way to select records: the `--where` grammar, how a field of a record is read, and what matches.

Every command that selects runs (`runs`, `report`, `compare`, `check`, `bless`, `history`), the
sweep's skip index and `peftbench.results.load` go through `matches`, so `--where lr=0.002` means
the same thing everywhere.

Grammar: `--where FIELD=VALUE[,VALUE...][,FIELD=VALUE...]`, repeatable. A comma-separated item without
`=` is one more value of the field before it (`method=lora,bitfit,task=mrpc`). A field matches when
the record's value equals any of its values (as text, or as numbers: `lr=2e-3` matches 0.002).

Fields: `status` (effective: `stale` works), `commit` (a prefix of the git commit), `dirty`, `host`,
`device`, a top-level record field (`seed`, `key`, `run_id`), a config field (`method`, `task`,
`model`, `data`, `preset`), a dotted path (`config.training.lr`, `training.lr`, `params.method`), or
a short training, hyperparameter or generation name (`lr`, `r`, `num_beams`).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from typing import Any, get_type_hints

from peftbench.config.schema import section_fields
from peftbench.errors import UsageError
from peftbench.records.schema import SCHEMAS, RunConfig
from peftbench.specs import method_specs

CONFIG_FIRST = ("method", "task", "model", "data", "preset")  # read from the config before the record's top level
ENV_FIELDS = ("commit", "dirty", "device")
SECTIONS = ("training", "hyperparameters", "generation")


def parse_where(texts: Iterable[str] | None) -> dict[str, list[str]]:
    """`["method=lora,bitfit,task=mrpc", "seed=0"]` -> {'method': ['lora', 'bitfit'], 'task': ['mrpc'], 'seed': ['0']}."""
    where: dict[str, list[str]] = {}
    last: str | None = None
    for text in texts or ():
        for item in (x.strip() for x in text.split(",")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if sep and key.strip():
                last = check_field(key.strip())
                where.setdefault(last, []).append(value.strip())
            elif sep or last is None:
                raise UsageError(f"--where expects FIELD=VALUE[,VALUE...] (e.g. method=lora,bitfit or training.lr=0.002), got {item!r}")
            else:
                where[last].append(item)
    return where


@functools.cache
def known_fields() -> frozenset[str]:
    """The field names `--where` reads without a dot: record and config fields, and every short setting name."""
    names = {"status", *ENV_FIELDS}
    for schema in (*SCHEMAS.values(), RunConfig):
        names |= set(get_type_hints(schema))
    for method in method_specs():
        for fields in section_fields(method).values():
            names |= {f for f in fields if "." not in f}
    return frozenset(names)


def check_field(name: str) -> str:
    """A field `--where` can read (a dotted path is taken as given), or one line with the close names."""
    if "." in name or name in known_fields():
        return name
    close = difflib.get_close_matches(name, sorted(known_fields()), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else " (fields: method, task, model, seed, key, status, commit, training.lr...)"
    raise UsageError(f"--where: unknown field {name!r}{hint}")


def as_where(filters: Mapping[str, Any]) -> dict[str, list[str]]:
    """Keyword filters (`method="lora"`, `seed=[0, 1]`, `task=None`) in the grammar's form; None means no filter."""
    out: dict[str, list[str]] = {}
    for name, wanted in filters.items():
        if wanted is None:
            continue
        values = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        out[name] = [str(v) for v in values]
    return out


def field_of(record: Mapping[str, Any], name: str, status: str | None = None) -> Any:
    """The value a `--where` field names in `record` (None when it has none); `status` is the effective one if given."""
    if name == "status":
        return status if status is not None else record.get("status")
    if name in ENV_FIELDS:
        return (record.get("env") or {}).get(name)
    config = record.get("config") or {}
    for root in (config, record) if name in CONFIG_FIRST else (record, config):
        value: Any = root
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return value
    for section in SECTIONS:
        values = config.get(section) or {}
        if isinstance(values, Mapping) and name in values:
            return values[name]
    return None


def matches(record: Mapping[str, Any], where: Mapping[str, list[str]], status: str | None = None) -> bool:
    """Whether `record` has, for every field of `where`, one of its values (a commit by prefix)."""
    for name, wanted in where.items():
        value = field_of(record, name, status)
        if name == "commit":
            if not any(value and str(value).startswith(w) for w in wanted):
                return False
        elif str(value) not in wanted and not numeric_match(value, wanted):
            return False
    return True


def numeric_match(value: Any, wanted: list[str]) -> bool:
    """`0.002` matches `2e-3`; text that is not a number matches nothing here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    for w in wanted:
        try:
            if float(w) == float(value):
                return True
        except ValueError:
            continue
    return False
