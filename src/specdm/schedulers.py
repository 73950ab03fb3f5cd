"""Noise schedules and samplers, all from diffusers, with SpecDM's training schedule."""

from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from specdm.config import SAMPLERS
from specdm.errors import ConfigError

# SpecDM: DDPM with T = 1000 and betas linear from 0.0015 to 0.0155.
PAPER_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0155, beta_schedule="linear")


def training_scheduler(**schedule) -> DDPMScheduler:
    """The forward-process scheduler used in training (epsilon prediction, no clipping of latents)."""
    cfg = {**PAPER_SCHEDULE, **schedule}
    return DDPMScheduler(**cfg, prediction_type="epsilon", clip_sample=False)


def sampling_scheduler(name: str, schedule: dict, eta: float = 0.0):
    """A sampler by name over the schedule the model was trained with.

    ``ddpm``: ancestral sampling (the paper's; 1000 steps). ``ddim``: DDIM with
    ``eta`` (0 = deterministic). ``dpm++``: DPM-Solver++ (2nd order, multistep).
    ``dpm++sde``: its stochastic (SDE) variant, which injects fresh noise like DDPM.
    """
    cfg = {**PAPER_SCHEDULE, **schedule, "prediction_type": "epsilon"}
    if name == "ddpm":
        return DDPMScheduler(**cfg, clip_sample=False)
    if name == "ddim":
        return DDIMScheduler(**cfg, clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
    if name in ("dpm++", "dpm++sde"):
        algorithm = "dpmsolver++" if name == "dpm++" else "sde-dpmsolver++"
        return DPMSolverMultistepScheduler(**cfg, algorithm_type=algorithm, solver_order=2, timestep_spacing="trailing")
    raise ConfigError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLERS)}")
