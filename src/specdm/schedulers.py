"""Noise schedules and samplers, all from diffusers: the one place that names them.

The names, the paper's schedule and the default number of steps live here and
nowhere else; diffusers is imported only when a scheduler is built, so the
command line (which reads the names) starts without torch.
"""

from __future__ import annotations

from specdm.errors import ConfigError

# SpecDM: DDPM with T = 1000 and betas linear from 0.0015 to 0.0155.
PAPER_SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0155, beta_schedule="linear")

SAMPLERS = ("ddpm", "ddim", "dpm++", "dpm++sde")
# bench/samplers.py: DPM-Solver++ SDE with 20 steps is within the noise of DDPM-1000's FD and mSAD at ~50x the speed
DEFAULT_SAMPLER = "dpm++sde"
DEFAULT_STEPS = {"ddpm": 1000, "ddim": 20, "dpm++": 20, "dpm++sde": 20}


def default_steps(sampler: str) -> int:
    """Network evaluations a sampler takes unless told otherwise (DDPM: the paper's 1000; the others 20)."""
    check_sampler(sampler)
    return DEFAULT_STEPS[sampler]


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLERS)}")
    return name


# what ``rescale_betas_zero_snr`` (zero terminal SNR, Lin et al. 2024) comes with: at alpha_bar_T = 0 an epsilon
# prediction cannot give x0 (it divides by sqrt(alpha_bar_T)), a v prediction can
ZERO_TERMINAL_SNR = dict(rescale_betas_zero_snr=True, prediction_type="v_prediction")


def training_scheduler(**schedule):
    """The forward-process scheduler used in training (epsilon prediction unless ``schedule`` names another,
    no clipping of latents)."""
    from diffusers import DDPMScheduler

    cfg = {**PAPER_SCHEDULE, "prediction_type": "epsilon", **schedule}
    return DDPMScheduler(**cfg, clip_sample=False)


def sampling_scheduler(name: str, schedule: dict, eta: float = 0.0):
    """A sampler by name over the schedule the model was trained with.

    ``ddpm``: ancestral sampling (the paper's; 1000 steps). ``ddim``: DDIM with
    ``eta`` (0 = deterministic). ``dpm++``: DPM-Solver++ (2nd order, multistep).
    ``dpm++sde``: its stochastic (SDE) variant, which injects fresh noise like DDPM.
    A schedule rescaled to zero terminal SNR starts every sampler at t = T - 1 ("trailing" spacing).
    """
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    check_sampler(name)
    cfg = {**PAPER_SCHEDULE, "prediction_type": "epsilon", **schedule}
    if name == "ddpm":
        spacing = "trailing" if cfg.get("rescale_betas_zero_snr") else "leading"
        return DDPMScheduler(**cfg, clip_sample=False, timestep_spacing=spacing)
    if name == "ddim":
        return DDIMScheduler(**cfg, clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
    algorithm = "dpmsolver++" if name == "dpm++" else "sde-dpmsolver++"
    return DPMSolverMultistepScheduler(**cfg, algorithm_type=algorithm, solver_order=2, timestep_spacing="trailing")
