"""Property-based tests of the two places user text enters: spec files and `--set`.

Whatever a spec file or a `--set` holds, the answer is a value or a `UsageError` (exit 2, one
line), never another exception: a TypeError from a YAML list where a mapping belongs would be a
traceback. Valid values round-trip exactly.
"""

from __future__ import annotations

import math
import types
import typing
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from peftbench.config.schema import GenerationConfig, TrainConfig, build, coerce, field_types, flat_field_types, parse_set  # noqa: E402
from peftbench.errors import UsageError  # noqa: E402
from peftbench.methods import METHODS  # noqa: E402
from peftbench.specs import METHOD_KEYS_OPTIONAL, METHOD_KEYS_REQUIRED, PRESET_KEYS, MethodSpec, parse_method_spec  # noqa: E402
from peftbench.tasks.base import TASK_KEYS_OPTIONAL, TASK_KEYS_REQUIRED, TaskSpec, parse_task_spec  # noqa: E402

SLOW_CPU = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150)

# Every config class `--set` and the specs reach, by section name as `parse_set` sees them.
CLASSES: dict[str, type] = {"training": TrainConfig, "generation": GenerationConfig}
CLASSES |= {f"hyperparameters ({name})": method.config_cls for name, method in METHODS.items()}
FIELDS = [(cls, name, kind) for cls in dict.fromkeys(CLASSES.values()) for name, kind in flat_field_types(cls).items()]
SECTION_FIELDS = {"hyperparameters": set(field_types(METHODS.get("lora").config_cls)), "training": set(field_types(TrainConfig))}
SECTION_FIELDS["generation"] = set(field_types(GenerationConfig))


def plain(kind: typing.Any) -> typing.Any:
    """`int | None` -> int: the type a written value must have."""
    options = [o for o in typing.get_args(kind) if o is not type(None)]
    return options[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) else kind


def written(kind: typing.Any) -> st.SearchStrategy[tuple[typing.Any, str]]:
    """(value, how a user writes it on the command line) for one field type."""
    kind = plain(kind)
    if typing.get_origin(kind) is tuple:
        item = st.text(st.characters(codec="utf-8", exclude_characters=","), min_size=1).map(str.strip).filter(bool)
        return st.lists(item, min_size=1, max_size=4).map(lambda xs: (tuple(xs), ",".join(xs)))
    if kind is bool:
        return st.booleans().map(lambda b: (b, str(b).lower()))
    if kind is int:
        return st.integers(-(10**15), 10**15).map(lambda i: (i, str(i)))
    if kind is float:
        return st.floats(allow_nan=False, allow_infinity=False).map(lambda f: (f, repr(f)))
    return st.text().map(lambda s: (s, s))


@st.composite
def field_and_value(draw: st.DrawFn) -> tuple[type, str, typing.Any, str]:
    cls, name, kind = draw(st.sampled_from(FIELDS))
    value, text = draw(written(kind))
    return cls, name, value, text


@SLOW_CPU
@given(field_and_value())
def test_any_valid_value_round_trips_through_coerce(case):
    cls, name, value, text = case
    got = coerce(f"{cls.__name__}.{name}", flat_field_types(cls)[name], text)
    assert got == value and type(got) is type(value)


@SLOW_CPU
@given(st.sampled_from(sorted(SECTION_FIELDS)), st.data())
def test_any_valid_set_round_trips_short_and_dotted(section, data):
    cls = {"hyperparameters": METHODS.get("lora").config_cls, "training": TrainConfig, "generation": GenerationConfig}[section]
    name = data.draw(st.sampled_from(sorted(SECTION_FIELDS[section])))
    value, text = data.draw(written(field_types(cls)[name]))
    owners = [s for s, names in SECTION_FIELDS.items() if name in names]
    keys = [f"{section}.{name}"] + ([name] if owners == [section] else [])
    for key in keys:
        parsed = parse_set([f"{key}={text}"], SECTION_FIELDS)
        assert parsed[section] == {name: text}
        assert getattr(build(cls, section, parsed[section]), name) == value


# Values as YAML and JSON can hold them: what a spec file gives `coerce`.
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


LR = (TrainConfig, "lr", float)
SEED = (TrainConfig, "seed", int)


@SLOW_CPU
@given(st.sampled_from(FIELDS), YAML_VALUES | st.text())
@example(LR, "nan")
@example(LR, "-inf")
@example(LR, float("inf"))
@example(SEED, "1e400")  # int(float(...)) overflows
@example(SEED, "1.5e0")  # a fraction written with an exponent, once truncated to 1
@example(SEED, 2.5)
def test_any_value_coerces_or_is_a_usage_error(field, value):
    _, name, kind = field
    try:
        got = coerce(name, kind, value)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    if isinstance(value, str) and type(got) in (int, float):
        assert float(value) == got  # what was written, not a rounded or truncated version of it
    expected = plain(kind)
    if typing.get_origin(expected) is tuple:
        assert isinstance(got, tuple)
    elif got is not None:
        assert type(got) is expected
    if isinstance(got, float):
        assert math.isfinite(got)


@SLOW_CPU
@given(st.lists(st.text(max_size=30), max_size=3))
def test_arbitrary_set_strings_parse_or_are_a_usage_error(pairs):
    try:
        parsed = parse_set(pairs, SECTION_FIELDS)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    for section, values in parsed.items():
        assert set(values) <= SECTION_FIELDS[section]


@SLOW_CPU
@given(st.sampled_from(sorted(n for names in SECTION_FIELDS.values() for n in names)), st.text(max_size=20))
def test_arbitrary_values_for_real_keys_build_or_are_a_usage_error(name, text):
    try:
        parsed = parse_set([f"{name}={text}"], SECTION_FIELDS)
    except UsageError:
        return  # an ambiguous short name
    cls = {"hyperparameters": METHODS.get("lora").config_cls, "training": TrainConfig, "generation": GenerationConfig}
    for section, values in parsed.items():
        try:
            build(cls[section], section, values)
        except UsageError as exc:
            assert "\n" not in str(exc)


# --------------------------------------------------------------------------- spec files


def spec_documents(required: set[str], optional: set[str]) -> st.SearchStrategy[dict]:
    """Mappings with the spec's own keys (some missing, some extra) holding any YAML values."""
    keys = st.sampled_from(sorted(required | optional | {"hyperparmeters", "x"}))
    preset = st.dictionaries(st.sampled_from(sorted(PRESET_KEYS | {"modles"})), YAML_VALUES, max_size=4)
    value = YAML_VALUES | st.lists(preset, max_size=2)
    return st.dictionaries(keys, value, max_size=len(required | optional) + 1)


def write_spec(folder: Path, name: str, content: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(content, encoding="utf-8")
    return path


VALID_METHOD = {"version": 1, "name": "m", "description": "d"}
VALID_TASK = {"version": 1, "name": "t", "description": "d", "kind": "generation", "format": "e2e", "metrics": ["bleu"]}
VALID_TASK |= {"main_metric": "bleu", "eval_splits": ["test"], "default_model": "tiny-gpt2"}


@SLOW_CPU
@given(spec_documents(METHOD_KEYS_REQUIRED, METHOD_KEYS_OPTIONAL), st.booleans())
def test_any_method_spec_loads_or_is_a_usage_error(tmp_path_factory, document, over_a_valid_one):
    if over_a_valid_one:  # get past the first checks, to the fields behind them
        document = {**VALID_METHOD, **document}
    path = write_spec(tmp_path_factory.mktemp("spec"), "m", yaml.safe_dump(document))
    try:
        spec = parse_method_spec(path)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert isinstance(spec, MethodSpec) and isinstance(spec.description, str)
    assert isinstance(spec.hyperparameters, dict) and all(isinstance(p.models, tuple) for p in spec.presets)


@SLOW_CPU
@given(spec_documents(TASK_KEYS_REQUIRED, TASK_KEYS_OPTIONAL), st.booleans())
def test_any_task_spec_loads_or_is_a_usage_error(tmp_path_factory, document, over_a_valid_one):
    if over_a_valid_one:
        document = {**VALID_TASK, **{k: v for k, v in document.items() if k not in ("version", "name")}}
    path = write_spec(tmp_path_factory.mktemp("spec"), "t", yaml.safe_dump(document))
    try:
        spec = parse_task_spec(path)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert isinstance(spec, TaskSpec) and all(isinstance(m, str) for m in spec.metrics)


@SLOW_CPU
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_file_content_loads_or_is_a_usage_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("spec") / "m.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    with pytest.raises(UsageError):
        parse_method_spec(path)  # no arbitrary text is a complete spec named m


NAMES = st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12)
# printable text: YAML itself folds line-break characters such as U+0085 into spaces when it reads them back
PRINTABLE = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)


@SLOW_CPU
@given(
    description=PRINTABLE,
    hyperparameters=st.dictionaries(NAMES, st.integers() | st.floats(allow_nan=False) | PRINTABLE, max_size=4),
    paper_labels=st.lists(NAMES, max_size=3),
    models=st.lists(NAMES, max_size=2),
    preset_name=st.none() | NAMES,
)
def test_a_valid_method_spec_round_trips(tmp_path_factory, description, hyperparameters, paper_labels, models, preset_name):
    preset = {"models": models, "training": {"lr": 0.1}, **({"name": preset_name} if preset_name else {})}
    document = {"version": 1, "name": "m", "description": description, "hyperparameters": hyperparameters}
    document |= {"paper_labels": paper_labels, "presets": [preset]}
    spec = parse_method_spec(write_spec(tmp_path_factory.mktemp("spec"), "m", yaml.safe_dump(document, allow_unicode=True)))
    assert (spec.name, spec.description, spec.hyperparameters) == ("m", description, hyperparameters)
    assert spec.paper_labels == tuple(paper_labels)
    (read,) = spec.presets
    assert (read.name, read.models, read.training) == (preset_name, tuple(models), {"lr": 0.1})
