"""ReLoRA: restarts keep the function, start A and B afresh, prune the optimizer state, and ramp the LR;
the merged updates add up to a rank above r; counts are LoRA's; a run records its restarts."""

import json
from pathlib import Path

import pytest
import torch
from tiny import adapt, batch, labels_for
from transformers import get_linear_schedule_with_warmup

from peftbench.bench.params import count_params
from peftbench.errors import UsageError
from peftbench.methods.lora import lora_layers
from peftbench.methods.relora import JaggedSchedule, prune_by_magnitude
from peftbench.run.hooks import TrainState


class Loop:
    """A minimal training loop driving the method's own callbacks, as the runner does (optimizer, then scheduler, then hooks)."""

    def __init__(self, model_name="tiny-roberta", kind="classification", lr=1e-2, total=40, **hyperparameters):
        torch.manual_seed(0)
        self.model, self.adapted = adapt(model_name, kind, "relora", **hyperparameters)
        self.kind = kind
        self.optimizer = torch.optim.AdamW(self.adapted.trainable_parameters().values(), lr=lr)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, 0, total)
        self.hooks = self.adapted.callbacks()
        self.state = TrainState(0, 1, total, self.adapted, self.optimizer, self.scheduler, None, {"hooks": {}, "measurements": {}})
        self.x = batch()
        self.labels = labels_for(kind, self.x)

    def step(self, hooks=True):
        """One optimizer step; `hooks=False` stops before the callbacks (to look at the state just before a restart)."""
        self.model.train()
        loss = self.adapted(**self.x, labels=self.labels).loss
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        self.state.step += 1
        if hooks:
            self.run_hooks()

    def run_hooks(self):
        for hook in self.hooks:
            hook.on_step_end(self.state)

    def logits(self):
        self.model.eval()
        with torch.no_grad():
            return self.adapted(**self.x).logits

    def lr(self):
        return self.optimizer.param_groups[0]["lr"]


def test_a_restart_keeps_the_outputs_and_starts_a_and_b_afresh():
    loop = Loop(restart_every=3, restart_warmup=1)
    for _ in range(2):
        loop.step()
    loop.step(hooks=False)
    layers = dict(lora_layers(loop.model))
    before = loop.logits()
    a_before = {p: torch.cat([a.detach().clone() for a in layer.lora_A.values()]) for p, layer in layers.items()}
    assert all(b.abs().sum() > 0 for layer in layers.values() for b in layer.lora_B.values())  # B trained
    loop.run_hooks()  # step 3: the restart
    assert torch.allclose(loop.logits(), before, atol=1e-5)
    for path, layer in layers.items():
        for name in layer.slices:
            assert torch.count_nonzero(layer.lora_B[name]) == 0
            a = layer.lora_A[name]
            bound = 1 / a.shape[1] ** 0.5  # kaiming_uniform_(a=sqrt(5)) on (r, d_in): U(-1/sqrt(d_in), 1/sqrt(d_in))
            assert a.abs().max() <= bound and a.std() > bound / 4
        assert not torch.allclose(torch.cat(list(layer.lora_A.values())), a_before[path])
    assert loop.state.record["hooks"]["relora"]["restarts"] == 1


def test_a_restart_on_gpt2s_fused_attention_keeps_the_outputs():
    loop = Loop("tiny-gpt2", "generation", restart_every=2, restart_warmup=1)
    loop.step()
    loop.step(hooks=False)
    before = loop.logits()
    loop.run_hooks()
    assert torch.allclose(loop.logits(), before, atol=1e-5)


def test_the_lora_parameters_optimizer_state_is_pruned_by_magnitude_per_tensor():
    loop = Loop(restart_every=3, restart_warmup=1, optimizer_reset=0.9)
    for _ in range(2):
        loop.step()
    loop.step(hooks=False)
    lora = {n: p for n, p in loop.adapted.trainable_parameters().items() if "lora_" in n}
    head = {n: p for n, p in loop.adapted.trainable_parameters().items() if loop.adapted.is_head(n)}
    before = {(n, k): loop.optimizer.state[p][k].clone() for n, p in {**lora, **head}.items() for k in ("exp_avg", "exp_avg_sq")}
    loop.run_hooks()
    for (name, key), old in before.items():
        new = loop.optimizer.state[{**lora, **head}[name]][key]
        if name in head:
            assert torch.equal(new, old)  # only the LoRA parameters' state is pruned
            continue
        keep = round(0.1 * old.numel())
        kept = torch.nonzero(new.flatten()).flatten()
        assert len(kept) == keep
        assert set(kept.tolist()) == set(old.abs().flatten().topk(keep).indices.tolist())  # the largest by magnitude
        assert torch.equal(new.flatten()[kept], old.flatten()[kept])  # kept entries unchanged
    assert loop.optimizer.state[next(iter(lora.values()))]["step"] == 3  # Adam's step count (bias correction) stays


def test_prune_by_magnitude_edges():
    t = torch.tensor([3.0, -5.0, 1.0, 0.5])
    assert prune_by_magnitude(t, 0.5) == 2 and t.tolist() == [3.0, -5.0, 0.0, 0.0]
    t = torch.tensor([1.0, 2.0])
    assert prune_by_magnitude(t, 0.0) == 0 and t.tolist() == [1.0, 2.0]
    assert prune_by_magnitude(t, 1.0) == 2 and t.tolist() == [0.0, 0.0]


def test_the_jagged_schedule_ramps_from_zero_back_to_the_base_schedule():
    warmup, total, restart = 4, 40, 10
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    twin = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    reference = get_linear_schedule_with_warmup(twin, 3, total)
    scheduler = get_linear_schedule_with_warmup(optimizer, 3, total)
    jagged = JaggedSchedule(scheduler, warmup)
    lrs, base = {}, {}
    for step in range(1, 20):
        optimizer.step()
        twin.step()
        scheduler.step()
        reference.step()
        if step == restart:
            jagged.restart()
        lrs[step], base[step] = optimizer.param_groups[0]["lr"], reference.get_last_lr()[0]
    assert all(lrs[s] == pytest.approx(base[s]) for s in range(1, restart))  # untouched before the first restart
    assert lrs[restart] == pytest.approx(0.0, abs=1e-12) and base[restart] > 0.5
    assert lrs[restart + warmup // 2] == pytest.approx(base[restart + warmup // 2] / 2)
    assert all(lrs[s] == pytest.approx(base[s]) for s in range(restart + warmup, 20))
    assert scheduler.get_last_lr()[0] == lrs[19]


def test_the_runner_loop_sees_the_jagged_lr():
    loop = Loop(restart_every=5, restart_warmup=2, total=20)
    lrs = []
    for _ in range(9):
        loop.step()
        lrs.append(loop.lr())
    assert lrs[4] == 0.0  # right after the restart at step 5
    assert lrs[5] == pytest.approx(0.5 * 1e-2 * (1 - 6 / 20))  # half-way up the ramp
    assert lrs[6] == pytest.approx(1e-2 * (1 - 7 / 20))  # back on the base schedule


def weights_of(model):
    return {path: layer.base.weight.detach().clone() for path, layer in lora_layers(model)}


@pytest.mark.parametrize(("model_name", "kind"), [("tiny-roberta", "classification"), ("tiny-gpt2", "generation")])
def test_after_k_restarts_the_accumulated_update_has_rank_above_r(model_name, kind):
    r, every, restarts = 2, 3, 3
    loop = Loop(model_name, kind, lr=2e-3, r=r, restart_every=every, restart_warmup=1, optimizer_reset=0.5)
    w0 = weights_of(loop.model)
    slices = {path: layer.slices for path, layer in lora_layers(loop.model)}
    for _ in range(every * restarts + 2):  # end two steps after the last restart: the current B·A counts too
        loop.step()
    loop.hooks[0].on_epoch_end(loop.state, {})
    report = loop.state.record["hooks"]["relora"]
    assert report["restarts"] == restarts
    loop.adapted.merge()
    final = {path: loop.model.get_submodule(path).weight.detach() for path in w0}
    for path, names in slices.items():
        for name, (lo, hi) in names.items():
            delta = final[path] - w0[path]
            delta = delta[lo:hi] if isinstance(loop.model.get_submodule(path), torch.nn.Linear) else delta[:, lo:hi].T
            s = torch.linalg.svdvals(delta.double())
            rank = int((s > 1e-5 * s[0]).sum())  # float32 merging leaves noise near 1e-7 * s[0]
            assert rank > r
            assert report["accumulated_update_rank"][f"{path}:{name}"] == rank


def test_the_record_says_what_a_checkpoint_is_after_a_merge():
    loop = Loop(restart_every=2, restart_warmup=1)
    loop.step()
    loop.hooks[0].on_epoch_end(loop.state, {})
    before = loop.state.record["hooks"]["relora"]["checkpoint"]
    assert before["adapter_state_reproduces_model"] is True
    loop.step()
    loop.hooks[0].on_epoch_end(loop.state, {})
    after = loop.state.record["hooks"]["relora"]["checkpoint"]
    assert after["adapter_state_reproduces_model"] is False and "no longer reproduces" in after["note"]
    assert after["format"] in after["bytes_by_format"] and after["bytes"] == min(after["bytes_by_format"].values())
    assert after["bytes"] > after["adapter_only_bytes"]
    assert loop.state.record["measurements"]["checkpoint_bytes"] == after["bytes"]


def test_counts_are_loras():
    relora, lora = count_params("relora", "roberta-base"), count_params("lora", "roberta-base")
    assert relora.counts == lora.counts and relora.counts["method"] == 294_912 == relora.formula


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["restart_every=10", "restart_warmup=10"], "restart_warmup"),
        (["optimizer_reset=1.5"], "optimizer_reset"),
        (["restart_every=-1"], "restart_every"),
    ],
)
def test_invalid_settings_are_usage_errors(overrides, message):
    with pytest.raises(UsageError, match=message):
        count_params("relora", "tiny-roberta", overrides=overrides)


def test_a_run_records_its_restarts_and_the_accumulated_rank(cli, results):
    res = cli(
        "run", "--method", "relora", "--task", "mrpc", "--model", "tiny-roberta", "--max-steps", "9",
        "--set", "restart_every=4", "--set", "restart_warmup=1", "--set", "r=2", "--set", "max_eval_examples=8",
    )  # fmt: skip
    assert res.code == 0, res.err
    (path,) = list(Path(results / "scratch").glob("*relora*.json"))
    record = json.loads(path.read_text())
    hook = record["hooks"]["relora"]
    assert record["status"] == "finished" and hook["restarts"] == 2 and hook["restart_steps"] == [4, 8]
    assert len(hook["accumulated_update_rank"]) == 4 and max(hook["accumulated_update_rank"].values()) > 2
    assert record["measurements"]["checkpoint_bytes"] == hook["checkpoint"]["bytes"]
