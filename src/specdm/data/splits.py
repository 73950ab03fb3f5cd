"""Spatially disjoint splits: each split is a list of rectangular regions of scenes.

A patch is only ever cut inside one region, so no pixel of a test region can
appear in a training patch. Regions of one scene must not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

from specdm.errors import ConfigError
from specdm.scene import Scene


@dataclass(frozen=True)
class Region:
    """Rows ``r0:r1`` and columns ``c0:c1`` of scene ``scene`` (an index into the scene list)."""

    scene: int
    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def height(self) -> int:
        return self.r1 - self.r0

    @property
    def width(self) -> int:
        return self.c1 - self.c0

    def overlaps(self, other: "Region") -> bool:
        return (
            self.scene == other.scene
            and self.r0 < other.r1
            and other.r0 < self.r1
            and self.c0 < other.c1
            and other.c0 < self.c1
        )


def split_regions(scenes: list[Scene], spec: dict) -> dict[str, list[Region]]:
    """Build ``{"train": [...], "test": [...]}`` from a split spec.

    Spec kinds:
      - ``{"kind": "rows", "train": [r0, r1], "test": [r0, r1] | None}``
        (and ``"cols"``): bands of rows (columns) of every scene.
      - ``{"kind": "scenes", "train": [names], "test": [names]}``: whole scenes.
      - ``{"kind": "none"}``: every scene is training data (no held-out test).
    """
    kind = spec.get("kind", "none")
    out: dict[str, list[Region]] = {"train": [], "test": []}
    if kind == "none":
        out["train"] = [Region(i, 0, s.shape[0], 0, s.shape[1]) for i, s in enumerate(scenes)]
    elif kind in ("rows", "cols"):
        for name in ("train", "test"):
            rng = spec.get(name)
            if rng is None:
                continue
            a, b = int(rng[0]), int(rng[1])
            for i, s in enumerate(scenes):
                size = s.shape[0] if kind == "rows" else s.shape[1]
                if not 0 <= a < b <= size:
                    raise ConfigError(
                        f"split '{name}' {kind} [{a}, {b}) is outside scene '{s.name}' ({size} {kind})"
                    )
                if kind == "rows":
                    out[name].append(Region(i, a, b, 0, s.shape[1]))
                else:
                    out[name].append(Region(i, 0, s.shape[0], a, b))
    elif kind == "scenes":
        names = [s.name for s in scenes]
        for name in ("train", "test"):
            for n in spec.get(name) or []:
                if n not in names:
                    raise ConfigError(f"split '{name}' names scene '{n}', which is not loaded; loaded: {names}")
                i = names.index(n)
                out[name].append(Region(i, 0, scenes[i].shape[0], 0, scenes[i].shape[1]))
    else:
        raise ConfigError(f"unknown split kind '{kind}' (use rows, cols, scenes or none)")
    check_disjoint(out)
    if not out["train"]:
        raise ConfigError("the split leaves no training region")
    return out


def check_disjoint(split: dict[str, list[Region]]) -> None:
    """Raise :class:`ConfigError` if regions of different splits overlap."""
    names = list(split)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for ra in split[a]:
                for rb in split[b]:
                    if ra.overlaps(rb):
                        raise ConfigError(f"split regions overlap: {a} {ra} and {b} {rb}")
