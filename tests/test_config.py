import pytest

from peftbench.config.resolve import resolve_run_config
from peftbench.config.schema import TrainConfig, build, parse_set
from peftbench.errors import UsageError
from peftbench.methods.config import LoraConfig

SECTIONS = {"hyperparameters": {"r", "alpha", "targets"}, "training": {"lr", "seed"}, "generation": {"num_beams"}}


def test_short_names_resolve_to_their_section():
    out = parse_set(["r=16", "lr=1e-4", "training.seed=3"], SECTIONS)
    assert out == {"hyperparameters": {"r": "16"}, "training": {"lr": "1e-4", "seed": "3"}, "generation": {}}


def test_unknown_key_suggests_candidates():
    with pytest.raises(UsageError, match="unknown key 'rr'.*'r'"):
        parse_set(["rr=3"], SECTIONS)


def test_ambiguous_short_name_is_an_error():
    with pytest.raises(UsageError, match="ambiguous"):
        parse_set(["x=1"], {"a": {"x"}, "b": {"x"}})


def test_malformed_pair_is_an_error():
    with pytest.raises(UsageError, match="key=value"):
        parse_set(["r16"], SECTIONS)


def test_values_are_coerced_and_type_checked():
    cfg = build(LoraConfig, "lora", {"r": "16", "alpha": "32", "targets": "q,k,v"})
    assert (cfg.r, cfg.alpha, cfg.targets) == (16, 32.0, ("q", "k", "v"))
    assert build(TrainConfig, "t", {"lr": "5e-4"}).lr == pytest.approx(5e-4)
    with pytest.raises(UsageError, match="expected int"):
        build(LoraConfig, "lora", {"r": "eight"})
    with pytest.raises(UsageError, match="expected int"):
        build(LoraConfig, "lora", {"r": 2.5})
    with pytest.raises(UsageError, match="unknown key"):
        build(LoraConfig, "lora", {"rank": 2})


def test_layers_apply_in_order_tiny_preset_then_set():
    cfg = resolve_run_config("lora", "mrpc", "tiny-roberta", overrides=["r=4", "lr=0.01"])
    assert cfg.hyperparameters.r == 4
    assert cfg.training.lr == 0.01
    assert cfg.training.epochs == 4  # from the tiny-roberta model preset


def test_paper_preset_for_roberta_base_mrpc():
    cfg = resolve_run_config("lora", "mrpc", "roberta-base")
    assert (cfg.training.batch_size, cfg.training.epochs, cfg.training.lr, cfg.training.max_seq_len) == (16, 30, 4e-4, 512)
    assert (cfg.hyperparameters.r, cfg.hyperparameters.alpha) == (8, 8)
    repo = resolve_run_config("lora", "mrpc", "roberta-base", preset="repo")
    assert repo.hyperparameters.alpha == 16


def test_unknown_named_preset_suggests():
    with pytest.raises(UsageError, match="unknown preset of lora 'rep'; did you mean 'repo'"):
        resolve_run_config("lora", "mrpc", "roberta-base", preset="rep")


def test_hash_changes_with_any_setting_and_only_then():
    a = resolve_run_config("lora", "mrpc", "tiny-roberta")
    b = resolve_run_config("lora", "mrpc", "tiny-roberta")
    c = resolve_run_config("lora", "mrpc", "tiny-roberta", overrides=["seed=1"])
    assert a.config_hash() == b.config_hash() != c.config_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("r=0", "rank"),
        ("r=-2", "rank"),
        ("alpha=0", "alpha"),
        ("targets=q,x", "targets"),
        ("r=100000", "rank"),
        ("lr=-1e-4", "lr"),
        ("max_seq_len=4096", "exceeds"),
    ],
)
def test_invalid_settings_fail_at_config_time(override, message):
    with pytest.raises(UsageError, match=message):
        resolve_run_config("lora", "mrpc", "tiny-roberta", overrides=[override])
