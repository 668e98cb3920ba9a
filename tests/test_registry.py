import pytest

from peftbench.errors import UsageError
from peftbench.registry import Registry


def test_unknown_name_suggests_the_near_miss():
    reg = Registry("method")
    reg.add("lora", 1)
    reg.add("bitfit", 2)
    with pytest.raises(UsageError, match=r"unknown method 'lorra'; did you mean 'lora'\?"):
        reg.get("lorra")


def test_far_miss_lists_known_names_without_a_guess():
    reg = Registry("task")
    reg.add("mrpc", 1)
    with pytest.raises(UsageError) as exc:
        reg.get("zzzz")
    assert "did you mean" not in str(exc.value)
    assert "known: mrpc" in str(exc.value)


def test_registering_twice_is_an_error():
    reg = Registry("model")
    reg.add("tiny", 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("tiny", 2)


def test_iteration_is_sorted():
    reg = Registry("x")
    for name in ("b", "a", "c"):
        reg.add(name, name)
    assert list(reg) == ["a", "b", "c"]
