"""Spatially disjoint splits: each split is a list of rectangular regions of scenes, and per scene a mask.

Kinds ``rows``, ``cols``, ``scenes`` and ``none`` are rectangles: a patch is only ever cut inside one
region, so no pixel of a test region can appear in a training patch. Regions of one scene must not overlap.

Kind ``folds`` is one fold of a spatial fold design (:mod:`specdm.data.folds`): its training part (blocks
minus a guard margin) and test part are unions of blocks, kept as boolean masks per scene; patches are
cut where their whole footprint lies in the training mask. The same parts are also given as rectangles
(``regions``: an exact cover of each mask) so that code reading pixels by region sees exactly them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specdm.data import folds
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


@dataclass
class SplitParts:
    """A split: ``regions`` (``{"train": [...], "test": [...]}``), the same parts as per-scene boolean masks
    ``train`` and ``test`` (``(H, W)`` each), whether windows are cut by the masks (``masked``: kind folds)
    rather than region by region, and ``record``: what a result should store about the split."""

    regions: dict[str, list[Region]]
    train: list[np.ndarray]
    test: list[np.ndarray]
    masked: bool = False
    record: dict = field(default_factory=dict)
    design: dict | None = None  # kind folds: the fold design (specdm.data.folds), e.g. for a nested validation part


def split_regions(scenes: list[Scene], spec: dict, patch_size: int | None = None) -> dict[str, list[Region]]:
    """Build ``{"train": [...], "test": [...]}`` from a split spec (:func:`split_parts`)."""
    return split_parts(scenes, spec, patch_size).regions


def split_parts(scenes: list[Scene], spec: dict, patch_size: int | None = None) -> SplitParts:
    """The split of ``scenes`` that ``spec`` describes.

    Spec kinds:
      - ``{"kind": "rows", "train": [r0, r1], "test": [r0, r1] | None}``
        (and ``"cols"``): bands of rows (columns) of every scene.
      - ``{"kind": "scenes", "train": [names], "test": [names]}``: whole scenes.
      - ``{"kind": "none"}``: every scene is training data (no held-out test).
      - ``{"kind": "folds", "design": file | packaged name | None, "fold": i}``: fold ``i`` of a fold design;
        ``design`` None computes one from the label maps (settings ``k``, ``block``, ``guard``, ``seed`` of
        the spec, :func:`compute_design`; ``patch_size`` is the windows' size it is made for).
    """
    kind = spec.get("kind", "none")
    if kind == "folds":
        return _fold_split(scenes, spec, patch_size)
    out = _rectangles(scenes, spec, kind)
    train, test = (regions_mask(scenes, out[name]) for name in ("train", "test"))
    record = {k: v for k, v in spec.items() if k in ("kind", "train", "test")}
    return SplitParts(out, train, test, False, record)


def _rectangles(scenes: list[Scene], spec: dict, kind: str) -> dict[str, list[Region]]:
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
        raise ConfigError(f"unknown split kind '{kind}' (use rows, cols, scenes, folds or none)")
    check_disjoint(out)
    if not out["train"]:
        raise ConfigError("the split leaves no training region")
    return out


def regions_mask(scenes: list[Scene], regions: list[Region]) -> list[np.ndarray]:
    """Per-scene boolean masks of the pixels that ``regions`` cover."""
    masks = [np.zeros(s.shape, bool) for s in scenes]
    for g in regions:
        masks[g.scene][g.r0 : g.r1, g.c0 : g.c1] = True
    return masks


def mask_regions(mask: np.ndarray, scene: int) -> list[Region]:
    """Disjoint rectangles that cover the True pixels of ``mask`` exactly: runs of each row, merged with the
    same runs of the rows below."""
    out: list[Region] = []
    open_: dict[tuple[int, int], int] = {}  # run (c0, c1) -> first row
    h = mask.shape[0]
    for r in range(h + 1):
        runs = set()
        if r < h:
            row = np.concatenate([[False], mask[r], [False]])
            edges = np.flatnonzero(row[1:] != row[:-1])
            runs = set(zip(edges[::2].tolist(), edges[1::2].tolist()))
        for run in list(open_):
            if run not in runs:
                out.append(Region(scene, open_.pop(run), r, *run))
        for run in runs:
            open_.setdefault(run, r)
    return sorted(out, key=lambda g: (g.r0, g.c0))


def compute_design(scenes: list[Scene], patch_size: int, k: int | None = None, block: int | None = None,
                   guard: int | None = None, seed: int = 0, restarts: int = folds.DEFAULT_RESTARTS,
                   steps: int | None = None, name: str | None = None) -> dict:
    """A fold design made from the scenes' label maps: blocks of one scene, or whole scenes when there are
    several (defaults: :func:`specdm.data.folds.defaults`)."""
    ref = scenes[0]
    if any(s.mask is None for s in scenes):
        raise ConfigError(f"a fold design needs label maps; scene '{next(s.name for s in scenes if s.mask is None)}' "
                          f"has none", ref.source)
    unit = "blocks" if len(scenes) == 1 else "scenes"
    k, block, guard = folds.defaults(unit, len(scenes), patch_size, k, block, guard)
    common = dict(class_names=ref.class_names, ignore_index=ref.ignore_index, k=k, seed=seed, patch_size=patch_size,
                  min_pixels=folds.DEFAULT_MIN_PIXELS, min_side=folds.DEFAULT_MIN_SIDE, name=name)
    if unit == "blocks":
        grid, search = folds.search_blocks(ref.mask, ref.num_classes, ref.ignore_index, k=k, block=block, guard=guard,
                                           patch_size=patch_size, seed=seed, restarts=restarts, steps=steps)
        return folds.make_design(unit=unit, scenes=[(ref.name, ref.mask)], block=block, guard=guard, grid=grid,
                                 search=search, **common)
    assignment, search = folds.search_scenes([s.mask for s in scenes], ref.num_classes, ref.ignore_index, k=k,
                                             seed=seed)
    return folds.make_design(unit=unit, scenes=[(s.name, s.mask) for s in scenes], scene_folds=assignment,
                             search=search, **common)


def design_from_split(scenes: list[Scene], spec: dict, patch_size: int, name: str | None = None) -> dict:
    """A one-fold design (k = 1) holding a rectangle split (kinds rows, cols, scenes): its test part is fold 0,
    its training part in no fold (-1), no guard. Rows and columns become blocks of one scene, of the largest
    size that every edge of the split falls on (Indian Pines' rows 0-86 / 87-144: 29 pixels); scenes stay
    whole. Every pixel must be in the training or the test part: a design has no third part."""
    kind = spec.get("kind", "none")
    if kind not in ("rows", "cols", "scenes"):
        raise ConfigError(f"only a split of kind rows, cols or scenes can be written as a design, not '{kind}'")
    ref = scenes[0]
    if any(s.mask is None for s in scenes):
        raise ConfigError("a fold design needs label maps", ref.source)
    regions = _rectangles(scenes, spec, kind)
    if not regions["test"]:
        raise ConfigError(f"the {kind} split has no test part to make a fold of")
    train, test = regions_mask(scenes, regions["train"]), regions_mask(scenes, regions["test"])
    left = [s.name for s, a, b in zip(scenes, train, test) if not (a | b).all()]
    if left:
        raise ConfigError(f"the {kind} split leaves pixels of scene(s) {', '.join(left)} in neither part; a design "
                          f"holds a training and a test part only")
    common = dict(class_names=ref.class_names, ignore_index=ref.ignore_index, k=1, seed=0, patch_size=patch_size,
                  min_pixels=folds.DEFAULT_MIN_PIXELS, min_side=folds.DEFAULT_MIN_SIDE, name=name,
                  search={"method": f"the config's {kind} split as one fold: {dict(spec)}"})
    if kind == "scenes":
        return folds.make_design(unit="scenes", scenes=[(s.name, s.mask) for s in scenes],
                                 scene_folds=[0 if t.all() else -1 for t in test], **common)
    if len(scenes) != 1:
        raise ConfigError(f"a {kind} split of {len(scenes)} scenes cannot be one block design; give one scene")
    edges = [v for g in regions["train"] + regions["test"] for v in (g.r0, g.r1, g.c0, g.c1)] + list(ref.shape)
    block = int(np.gcd.reduce(edges))
    grid = np.where(test[0][::block, ::block], 0, -1)
    return folds.make_design(unit="blocks", scenes=[(ref.name, ref.mask)], block=block, guard=0, grid=grid, **common)


def _fold_split(scenes: list[Scene], spec: dict, patch_size: int | None) -> SplitParts:
    fold = spec.get("fold")
    if fold is None:
        raise ConfigError("split kind folds needs 'fold': the index of the fold whose test part is held out")
    if any(s.mask is None for s in scenes):
        raise ConfigError("split kind folds needs label maps; these scenes have none", scenes[0].source)
    if spec.get("design") is None:
        if patch_size is None:
            raise ConfigError("a fold design computed from the label map needs the patch size it is made for")
        design = compute_design(scenes, patch_size, spec.get("k"), spec.get("block"), spec.get("guard"),
                                int(spec.get("seed") or 0))
        design["source"] = "computed from the label map (data.split.design: null)"
    else:
        design = folds.load_design(str(spec["design"]))
    names = [s.name for s in scenes]
    folds.check_design(design, int(fold), names, [s.mask for s in scenes], scenes[0].class_names,
                       scenes[0].ignore_index)
    train, test = folds.fold_parts(design, int(fold), [s.shape for s in scenes], names)
    regions = {"train": [g for i, m in enumerate(train) for g in mask_regions(m, i)],
               "test": [g for i, m in enumerate(test) for g in mask_regions(m, i)]}
    if not regions["train"]:
        raise ConfigError(f"fold {fold} of the design leaves no training part", design["source"])
    table = design["folds"][int(fold)]
    record = {"kind": "folds", "design": design.get("name"), "source": design["source"],
              "sha256": design.get("sha256"), "fold": int(fold), "k": design["k"], "unit": design["unit"],
              **({"block": design["block"], "guard": design["guard"]} if design["unit"] == "blocks" else {}),
              "classes_both_sides": table["both_sides"], "classes_missing": table["missing"], "fold_table": table}
    return SplitParts(regions, train, test, True, record, design)


def check_disjoint(split: dict[str, list[Region]]) -> None:
    """Raise :class:`ConfigError` if regions of different splits overlap."""
    names = list(split)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for ra in split[a]:
                for rb in split[b]:
                    if ra.overlaps(rb):
                        raise ConfigError(f"split regions overlap: {a} {ra} and {b} {rb}")
