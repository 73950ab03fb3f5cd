"""The training loop's checkpoints: safetensors + JSON, exact resume, never unpickled."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from diffusers.training_utils import EMAModel

from specdm.errors import CheckpointError
from specdm.training import engine
from specdm.training.engine import LoopConfig, load_checkpoint, make_accelerator, save_checkpoint, train_loop

X = torch.linspace(-1, 1, 16 * 3).reshape(16, 3)
Y = torch.stack([X.sum(1), X[:, 0] * X[:, 2]], 1)


class Net(torch.nn.Module):
    def __init__(self, hidden: int = 5):
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, hidden), torch.nn.Linear(hidden, 2)
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        self.calls += 1
        return self.b(torch.tanh(self.a(x)))


def net(seed: int = 0, hidden: int = 5) -> Net:
    torch.manual_seed(seed)
    return Net(hidden)


def step_fn(calls: list | None = None):
    def step(model, items, rnd):
        if calls is not None:
            calls.append(items.tolist())
        noise = 0.01 * rnd.normal(2)
        x, y = X.to(rnd.device)[items], Y.to(rnd.device)[items]
        loss = torch.nn.functional.mse_loss(model(x) + noise, y)
        return loss, {"mse": loss.item()}

    return step


def cfg(steps: int, **kw) -> LoopConfig:
    return LoopConfig(**{"steps": steps, "batch_size": 4, "lr": 0.05, "checkpoint_every": 2, "keep_checkpoints": 2,
                         "ema_decay": 0.9, "log_every": 1, **kw})


class Boom:
    """Unpickling this creates ``path``: the proof that a checkpoint file was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def no_unpickling(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def _trained_state(steps: int = 3):
    """A model, AdamW and EMA after ``steps`` updates."""
    model = net(0)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, betas=(0.8, 0.95), eps=1e-7, weight_decay=0.01)
    ema = EMAModel(model.parameters(), decay=0.9)
    for s in range(steps):
        loss = torch.nn.functional.mse_loss(model(X[s : s + 4]), Y[s : s + 4])
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.step(model.parameters())
    return model, opt, ema


def _update(model, opt, ema):
    loss = torch.nn.functional.mse_loss(model(X[5:9]), Y[5:9])
    opt.zero_grad()
    loss.backward()
    opt.step()
    ema.step(model.parameters())


def test_checkpoint_round_trip(tmp_path, no_unpickling):
    acc = make_accelerator()
    model, opt, ema = _trained_state()
    path = save_checkpoint(acc, tmp_path, 3, 2, model, opt, ema)
    assert path == tmp_path / "step_0000003"
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["model.safetensors", "optimizer.safetensors", "ema.safetensors", "training_state.json", "progress.json"])
    state = json.loads((path / "training_state.json").read_text())
    group = state["optimizer"]["param_groups"][0]
    assert group["lr"] == 0.05 and group["eps"] == 1e-7 and group["weight_decay"] == 0.01
    assert group["betas"] == {"__tuple__": [0.8, 0.95]}
    assert state["optimizer"]["state"]["0"]["step"] == {"__scalar__": 3.0, "dtype": "float32"}
    assert state["ema"]["optimization_step"] == 3 and state["step"] == 3

    model2 = net(1)  # other weights, fresh optimizer and EMA
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1.0)
    ema2 = EMAModel(model2.parameters(), decay=0.5)
    assert load_checkpoint(acc, path, model2, opt2, ema2) == 3

    a, b = model.state_dict(), model2.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = opt.state_dict(), opt2.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        assert sa["state"][i].keys() == sb["state"][i].keys()
        for k, v in sa["state"][i].items():
            assert v.dtype == sb["state"][i][k].dtype and torch.equal(v, sb["state"][i][k]), (i, k)
    assert ema2.decay == 0.9 and ema2.optimization_step == 3
    assert all(torch.equal(p, q) for p, q in zip(ema.shadow_params, ema2.shadow_params))
    # and they go on identically
    _update(model, opt, ema)
    _update(model2, opt2, ema2)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), model2.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(ema.shadow_params, ema2.shadow_params))


def test_train_loop_resume_is_exact(tmp_path, no_unpickling):
    full = train_loop(net(), step_fn(), 16, cfg(6), tmp_path / "a")
    first = train_loop(net(), step_fn(), 16, cfg(3), tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").glob("step_*")) == ["step_0000002", "step_0000003"]
    calls = []
    resumed = train_loop(net(7), step_fn(calls), 16, cfg(6), tmp_path / "b", resume=True)
    assert len(calls) == 3  # steps 3, 4, 5 only: the weights (seed 7) and optimizer came from step 3
    a, b = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # EMA weights and the buffer too
    assert not torch.equal(first.a.weight, resumed.a.weight)
    # pruned to the newest keep_checkpoints; no pickle anywhere
    assert sorted(p.name for p in (tmp_path / "b").glob("step_*")) == ["step_0000004", "step_0000006"]
    files = {p.suffix for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert files == {".safetensors", ".json", ".jsonl"}
    assert not list((tmp_path / "b").glob(".step_*"))  # no half-written folder left


def test_resume_ignores_pickles_in_the_folder(tmp_path, no_unpickling):
    train_loop(net(), step_fn(), 16, cfg(2), tmp_path)
    marker = tmp_path / "pwned"
    for name in ("optimizer.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl", "scaler.pt"):
        (tmp_path / "step_0000002" / name).write_bytes(pickle.dumps(Boom(marker)))
    train_loop(net(), step_fn(), 16, cfg(3), tmp_path, resume=True)
    assert not marker.exists()


def test_old_accelerate_checkpoint_is_refused(tmp_path, request):
    """A folder from accelerate's ``save_state`` (pickles) gives one clear error and is never unpickled."""
    acc = make_accelerator()
    model, opt, ema = _trained_state(2)
    model, opt = acc.prepare(model, opt)
    acc.register_for_checkpointing(ema)
    old = tmp_path / "step_0000002"
    acc.save_state(str(old))
    (old / "progress.json").write_text(json.dumps({"step": 2}))
    marker = tmp_path / "pwned"
    pickles = [p for p in old.iterdir() if p.suffix in (".bin", ".pkl", ".pt")]
    assert any(p.name == "optimizer.bin" for p in pickles)
    for p in pickles:
        p.write_bytes(pickle.dumps(Boom(marker)))
    request.getfixturevalue("no_unpickling")
    with pytest.raises(CheckpointError) as err:
        train_loop(net(), step_fn(), 16, cfg(4), tmp_path, resume=True)
    msg = str(err.value)
    assert "cannot be resumed safely" in msg and "--overwrite" in msg and str(old) in msg
    assert not marker.exists()


def _corrupt(path, name, how):
    f = path / name
    if how == "delete":
        f.unlink()
    elif how == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif how == "flip":
        raw = bytearray(f.read_bytes())
        raw[-3] ^= 0xFF
        f.write_bytes(bytes(raw))
    elif how == "garbage":
        f.write_text("{not json")


@pytest.mark.parametrize("name, how, needle", [
    ("model.safetensors", "delete", "is missing"),
    ("optimizer.safetensors", "truncate", "is corrupt"),
    ("ema.safetensors", "flip", "is corrupt"),
    ("training_state.json", "garbage", "is corrupt"),
    ("progress.json", "garbage", "is corrupt"),
])
def test_broken_checkpoint_names_the_file(tmp_path, no_unpickling, name, how, needle):
    train_loop(net(), step_fn(), 16, cfg(2), tmp_path)
    _corrupt(tmp_path / "step_0000002", name, how)
    with pytest.raises(CheckpointError) as err:
        train_loop(net(), step_fn(), 16, cfg(3), tmp_path, resume=True)
    assert needle in str(err.value) and str(tmp_path / "step_0000002" / name) in str(err.value)


def test_checkpoint_of_another_model_is_refused(tmp_path, no_unpickling):
    train_loop(net(), step_fn(), 16, cfg(2), tmp_path)
    with pytest.raises(CheckpointError) as err:
        train_loop(net(hidden=6), step_fn(), 16, cfg(3), tmp_path, resume=True)
    assert "does not fit" in str(err.value) and "model.safetensors" in str(err.value)
    train_loop(net(), step_fn(), 16, cfg(2, ema_decay=None), tmp_path / "plain")
    with pytest.raises(CheckpointError) as err:  # EMA switched on since
        train_loop(net(), step_fn(), 16, cfg(3), tmp_path / "plain", resume=True)
    assert "written without EMA" in str(err.value) and "ema.safetensors" in str(err.value)


def test_latest_checkpoint_skips_incomplete(tmp_path):
    (tmp_path / "step_0000004").mkdir()  # no progress.json: interrupted while writing
    (tmp_path / "step_0000002").mkdir()
    (tmp_path / "step_0000002" / "progress.json").write_text("{}")
    assert engine.latest_checkpoint(tmp_path) == tmp_path / "step_0000002"
    assert engine.latest_checkpoint(tmp_path / "missing") is None


def test_the_malicious_pickle_would_fire(tmp_path):
    """The other tests' proof works: unpickling a ``Boom`` does create its marker."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Boom(marker)))
    assert marker.exists()
