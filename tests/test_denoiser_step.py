"""The one denoiser training step (:func:`specdm.training.diffusion.train_latent_denoiser`) of every method: v
prediction and zero terminal SNR are options of the ``diffusion`` section, and whichever method turns them on trains
against the velocity that diffusers' schedulers sample with."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import single_thread, tiny_method_config, write_config

from specdm.cli import main
from specdm.config import METHODS, load_config
from specdm.training import diffusion


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_v_prediction_with_zero_terminal_snr(method, tmp_path, monkeypatch):
    """With ``diffusion.zero_terminal_snr: true`` every method's stage-2 steps compute the loss against
    ``get_velocity(x0, noise, t)`` of a schedule whose alpha_bar_T is 0, the model folder stores that schedule, and
    the run samples from it."""
    seen = []
    loss = diffusion.denoising_loss

    def spy(sched, pred, noise, x0, zt, t, ssim_weight=0.0):
        seen.append((sched, pred.detach(), noise, x0, zt, t))
        return loss(sched, pred, noise, x0, zt, t, ssim_weight)

    monkeypatch.setattr(diffusion, "denoising_loss", spy)
    cfg = tiny_method_config(tmp_path, method, diffusion={"zero_terminal_snr": True, "steps": 2},
                             sampling={"num_samples": 2})
    path = write_config(tmp_path / "cfg.yaml", cfg)
    with single_thread():
        assert main(["run", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    assert seen
    for sched, pred, noise, x0, zt, t in seen:
        assert sched.config.prediction_type == "v_prediction" and sched.alphas_cumprod[-1].item() == 0.0
        torch.testing.assert_close(zt, sched.add_noise(x0, noise, t.cpu()), rtol=0, atol=0)  # x0 is what was noised
        velocity = sched.get_velocity(x0, noise, t)
        assert torch.equal(diffusion.loss_target(sched, x0, noise, t), velocity)
        assert torch.equal(loss(sched, pred, noise, x0, zt, t)[0], F.mse_loss(pred.float(), velocity))
    stored = json.loads((tmp_path / "run" / "model" / "scheduler" / "scheduler_config.json").read_text())
    assert stored["prediction_type"] == "v_prediction" and stored["rescale_betas_zero_snr"] is True
    assert json.loads((tmp_path / "run" / "synthetic" / "metadata.json").read_text())["complete"]


@pytest.mark.parametrize("method", list(METHODS))
def test_prediction_defaults_and_the_zero_snr_rule(method, tmp_path):
    """Epsilon by default except HyperLDM (the paper's schedule, rescaled, v); zero terminal SNR with an epsilon
    target is refused (it cannot give x0 at alpha_bar_T = 0)."""
    cfg = tiny_method_config(tmp_path, method)
    d = load_config(str(write_config(tmp_path / "a.yaml", cfg))).diffusion
    assert d.prediction_type == ("v_prediction" if method == "hyperldm" else "epsilon")
    assert d.zero_terminal_snr is (method == "hyperldm")
    cfg["diffusion"].update(zero_terminal_snr=True, prediction_type="epsilon")
    with pytest.raises(Exception, match="zero_terminal_snr needs prediction_type v_prediction"):
        load_config(str(write_config(tmp_path / "b.yaml", cfg)))
    cfg["diffusion"].update(zero_terminal_snr=False, prediction_type="v_prediction")  # v without rescaling: allowed
    assert load_config(str(write_config(tmp_path / "c.yaml", cfg))).schedule()["prediction_type"] == "v_prediction"
