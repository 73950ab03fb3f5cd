"""``specdm.json``: what makes a model folder self-describing.

Task, bands, wavelengths, classes, normalization, patch size, latent scale
factors and the real training data's class statistics, so that a model folder
loads and samples without the training config.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from specdm.errors import CheckpointError
from specdm.scene import Scene

INFO_NAME = "specdm.json"


@dataclass
class ModelInfo:
    task: str
    num_dates: int
    band_names: list[str]
    wavelengths: list[float] | None
    rgb_bands: list[int]
    class_names: list[str]
    ignore_index: int | None
    normalization: dict
    patch_size: int
    latent_scale: list[float] | None = None
    real_stats: dict | None = None
    source: dict = field(default_factory=dict)
    method: str = "specdm"  # the method that made the folder (specdm.config.METHODS): its pipeline samples it

    @property
    def num_bands(self) -> int:
        return len(self.band_names)

    @classmethod
    def from_scene(cls, scene: Scene, normalization: dict, patch_size: int, source: dict,
                   method: str = "specdm") -> "ModelInfo":
        return cls(
            method=method,
            task=scene.task,
            num_dates=len(scene.images),
            band_names=list(scene.band_names),
            wavelengths=None if scene.wavelengths is None else [float(w) for w in scene.wavelengths],
            rgb_bands=[int(b) for b in scene.rgb_bands],
            class_names=list(scene.class_names),
            ignore_index=scene.ignore_index,
            normalization=normalization,
            patch_size=patch_size,
            source=source,
        )

    def save(self, model_dir: Path) -> None:
        Path(model_dir).mkdir(parents=True, exist_ok=True)
        (Path(model_dir) / INFO_NAME).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, model_dir: Path) -> "ModelInfo":
        f = Path(model_dir) / INFO_NAME
        if not f.is_file():
            raise CheckpointError(f"not a specdm model folder ({INFO_NAME} missing)", model_dir)
        try:
            return cls(**json.loads(f.read_text()))
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{INFO_NAME} is corrupt ({e})", f) from None

    def check_scene(self, scene: Scene, model_dir: Path) -> None:
        """Raise :class:`CheckpointError` if ``scene`` does not fit this model."""
        if scene.num_bands != self.num_bands:
            raise CheckpointError(
                f"the model was trained on {self.num_bands} bands but '{scene.name}' has {scene.num_bands}",
                model_dir,
            )
        if scene.num_classes != len(self.class_names):
            raise CheckpointError(
                f"the model was trained on {len(self.class_names)} classes but '{scene.name}' declares "
                f"{scene.num_classes}",
                model_dir,
            )
        if scene.task != self.task:
            raise CheckpointError(f"the model is for {self.task}, the data for {scene.task}", model_dir)
        if list(self.band_names) != list(scene.band_names):
            diff = next(i for i, (a, b) in enumerate(zip(self.band_names, scene.band_names)) if a != b)
            raise CheckpointError(f"the model's band {diff} is '{self.band_names[diff]}', band {diff} of "
                                  f"'{scene.name}' is '{scene.band_names[diff]}'", model_dir)
        if self.wavelengths is not None and scene.wavelengths is not None and not np.allclose(
                self.wavelengths, scene.wavelengths, atol=0.5):
            raise CheckpointError(f"the model was trained on other wavelengths than those of '{scene.name}' "
                                  f"({self.wavelengths[0]:g}-{self.wavelengths[-1]:g} nm against "
                                  f"{scene.wavelengths[0]:g}-{scene.wavelengths[-1]:g} nm)", model_dir)


def folder_hash(path: Path) -> str:
    """sha256 over the safetensors files below ``path`` (names and bytes), first 16 hex digits."""
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*.safetensors")):
        h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]
