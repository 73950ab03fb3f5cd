"""What every specdm pipeline shares: per-sample seeds and a self-describing model folder.

A model folder holds one sub-folder per component (``autoencoder/``, ``unet/``,
``scheduler/``), ``model_index.json`` naming each component's class, and
``specdm.json`` (:class:`~specdm.models.info.ModelInfo`: bands, wavelengths,
classes, normalization, latent scale). Each pipeline declares the class of each of its
components (:attr:`SpecdmPipeline.components`); a name in ``model_index.json`` only
selects among them (no code is imported by a name found in a file), so a new method's
pipeline loads like SpecDM's without registering its classes anywhere else.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from specdm.data.normalize import Normalizer
from specdm.errors import CheckpointError
from specdm.models.autoencoders import SpectralAutoencoder
from specdm.models.info import ModelInfo, folder_hash
from specdm.schedulers import PAPER_SCHEDULE, default_steps

MODEL_INDEX = "model_index.json"

def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a run seeded ``seed`` (independent of batching and sharding)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def sample_generators(indices, seed: int, device) -> list[torch.Generator]:
    """One generator per sample, seeded by :func:`sample_seed`."""
    return [torch.Generator(device=device).manual_seed(sample_seed(seed, i)) for i in indices]


def component_class(name: str, allowed: type, component: str, folder: Path) -> type:
    """The class ``model_index.json`` names for ``component``: the pipeline's own class for it (by name)."""
    if name != allowed.__name__:
        raise CheckpointError(f"{MODEL_INDEX} names class '{name}' for the {component}; this pipeline takes "
                              f"{allowed.__name__}", folder)
    return allowed


class SpecdmPipeline:
    """Base of the pipelines: components by name, ``save_pretrained`` / ``from_pretrained``, ``to``.

    Subclasses set :attr:`components` (name -> class; a folder without ``model_index.json``, written before
    it existed, loads these), :attr:`optional_components` (loaded when ``model_index.json`` names them, saved
    when set) and implement one ``__call__``.
    """

    components: dict[str, type] = {}
    optional_components: dict[str, type] = {}
    modules: tuple[str, ...] = ()  # components that are torch modules

    def __init__(self, info: ModelInfo, **components):
        self.info = info
        for name in self.optional_components:
            if components.get(name) is not None:
                self.modules = (*self.modules, name)
        for name, obj in components.items():
            setattr(self, name, obj.eval() if name in self.modules else obj)

    @property
    def device(self) -> torch.device:
        return next(getattr(self, self.modules[0]).parameters()).device

    def to(self, device):
        for name in self.modules:
            getattr(self, name).to(device)
        return self

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        index = {}
        for name in [*self.components, *(n for n in self.optional_components if getattr(self, n, None) is not None)]:
            obj = getattr(self, name)
            obj.save_pretrained(path / name)
            index[name] = type(obj).__name__
        (path / MODEL_INDEX).write_text(json.dumps(index, indent=1))
        self.info.save(path)

    @classmethod
    def load_components(cls, path: Path) -> dict:
        """Every component of the folder, by the class ``model_index.json`` names (or the default)."""
        index_file = path / MODEL_INDEX
        index = json.loads(index_file.read_text()) if index_file.is_file() else {}
        out = {}
        classes = {**cls.components, **{n: c for n, c in cls.optional_components.items() if n in index}}
        for name, allowed in classes.items():
            klass = component_class(index.get(name, allowed.__name__), allowed, name, path)
            try:
                out[name] = klass.from_pretrained(path / name)
            except CheckpointError:
                raise
            except (OSError, ValueError, RuntimeError, TypeError) as e:
                raise CheckpointError(f"cannot load the {name}: {str(e).splitlines()[0]}", path / name) from None
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu"):
        """Load a trained model folder (``specdm.json`` + components) onto ``device``."""
        path = Path(path)
        info = ModelInfo.load(path)
        if info.latent_scale is None or not (path / "unet").is_dir():
            raise CheckpointError("the denoiser is not trained yet (run specdm train-diffusion, or specdm run)", path)
        return cls(info=info, **cls.load_components(path)).to(device)

    def hashes(self, path: Path) -> dict:
        """Hashes of the weights of every torch component (recorded in a data set's metadata)."""
        return {name: folder_hash(Path(path) / name) for name in self.modules}


# the scheduler config entries that define the training schedule (and what the network predicts)
SCHEDULE_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "rescale_betas_zero_snr",
                 "prediction_type")


class LatentPipeline(SpecdmPipeline):
    """A latent diffusion pipeline: an autoencoder, a U-Net denoiser and the training schedule.

    Checks that the geometry agrees (denoiser latent size x downsampling = ``specdm.json``'s patch
    size) and maps decoded images back to the data's own units (:meth:`to_data_units`).
    """

    components = {"autoencoder": SpectralAutoencoder, "unet": UNet2DConditionModel, "scheduler": DDPMScheduler}
    modules = ("unet", "autoencoder")

    def __init__(self, autoencoder, unet, info: ModelInfo, scheduler=None, **optional):
        super().__init__(info, autoencoder=autoencoder, unet=unet, scheduler=scheduler or DDPMScheduler(**PAPER_SCHEDULE),
                         **optional)
        self.schedule = {k: self.scheduler.config[k] for k in SCHEDULE_KEYS}
        self.normalizer = Normalizer.from_dict(info.normalization)
        f = autoencoder.downsampling
        if unet.config.sample_size * f != info.patch_size:
            raise CheckpointError(f"the denoiser works on {unet.config.sample_size}x{unet.config.sample_size} latents, "
                                  f"which decode to {unet.config.sample_size * f}-pixel patches, but specdm.json says "
                                  f"{info.patch_size}")

    @property
    def latent_size(self) -> int:
        """The side of the latent grid the denoiser works on: the patch size over the autoencoder's downsampling."""
        return self.unet.config.sample_size

    def steps(self, sampler: str, num_inference_steps: int | None) -> int:
        """The sampler's steps (default: :func:`~specdm.schedulers.default_steps`), at most the training schedule's
        length (DDPM's default 1000 on a T = 100 model is T)."""
        return min(num_inference_steps or default_steps(sampler), self.schedule["num_train_timesteps"])

    def to_data_units(self, images: torch.Tensor) -> np.ndarray:
        """Decoded images ``(N, T, C, H, W)`` in normalized units -> clipped to the training range [0, 1] and
        mapped back to the data's own units (float32 numpy)."""
        normalized = images.clamp(0, 1).float().cpu().numpy()
        return np.moveaxis(self.normalizer.inverse(np.moveaxis(normalized, 2, -1)), -1, 2)

    def denoise(self, shape, indices, seed: int, predict, sampler: str, num_inference_steps: int | None,
                eta: float = 0.0, progress: bool = False) -> torch.Tensor:
        """Run the sampler from noise of ``shape``: sample ``indices[i]`` draws its initial noise and every
        stochastic step from its own generator (:func:`sample_seed`); ``predict(z, t)`` is the noise model."""
        from diffusers.utils.torch_utils import randn_tensor
        from tqdm.auto import tqdm

        from specdm.schedulers import sampling_scheduler

        dev = self.device
        gens = sample_generators(indices, seed, dev)
        sched = sampling_scheduler(sampler, self.schedule, eta)
        sched.set_timesteps(self.steps(sampler, num_inference_steps), device=dev)
        z = randn_tensor(shape, generator=gens, device=dev) * sched.init_noise_sigma
        kw = {"eta": eta} if sampler == "ddim" else {}
        for t in tqdm(sched.timesteps, desc="denoising", leave=False, disable=not progress):
            z = sched.step(predict(sched.scale_model_input(z, t), t), t, z, generator=gens, **kw).prev_sample
        return z
