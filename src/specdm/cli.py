"""``specdm``: the command line over YAML configs.

    specdm run CONFIG                 the whole flow (train both stages, sample, card)
    specdm train-autoencoder CONFIG   stage 1 only
    specdm train-diffusion CONFIG     stage 2 only (needs stage 1 in the same run folder)
    specdm superres CONFIG            train a two-stage super-resolver on the training part and write
                                      super-resolved training scenes (data.super_resolved reads them)
    specdm sample MODEL_DIR --out DIR synthesize a data set from a trained model folder
                                      (--rgb DIR_OR_FILE -k K: K spectral versions of each RGB image)
    specdm evaluate CONFIG SYNTH      score a synthetic data set against the config's real training split
    specdm benchmark CONFIG --synthetic NAME=DIR
                                      does synthetic data help downstream models? (held-out test split)
    specdm benchmark CONFIG --rgb-model MODEL_DIR
                                      pixel classification from RGB, RGB -> HyperLDM spectra, real
    specdm benchmark CONFIG --task denoise|sr4 --synthetic NAME=DIR [--cross-scene CONFIG2]
                                      does synthetic data help a denoiser or a x4 super-resolver? spectra
    specdm config CONFIG              print a config with every default filled in
    specdm view DATASET               write DATASET/view.html: a static page to browse the samples
    specdm conditions IMAGE --out DIR the condition maps of an image (edges, lines, ...), for --condition
    specdm folds CONFIG --out FILE    a spatial fold design from the config's label map (data.split kind folds)
    specdm apply OPERATION MODEL_DIR --out DIR
                                      an operation on a trained model folder (specdm apply --list)

CONFIG is a packaged name (``specdm config --list``) or a YAML path. Errors the
user can fix print one line naming the file and exit with status 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml

from specdm.errors import ConfigError, OutputError, SpecdmError
from specdm.schedulers import DEFAULT_SAMPLER, SAMPLERS


def _config_args(p: argparse.ArgumentParser, run_dir: bool = True) -> None:
    p.add_argument("config", help="packaged config name (e.g. indian_pines) or path to a YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set diffusion.steps=500 (repeatable)")
    if run_dir:
        p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<config name>)")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
        p.add_argument("--overwrite", action="store_true", help="replace an existing run folder made by specdm")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specdm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads per process (default: one per core; use 1 when other jobs share the cores)")
    sub = parser.add_subparsers(dest="command")

    _config_args(sub.add_parser("run", help="train both stages and write the synthetic data set"))
    _config_args(sub.add_parser("train-autoencoder", help="stage 1: the two-stream (or single-stream) VAE"))
    _config_args(sub.add_parser("train-diffusion", help="stage 2: the latent denoiser"))
    _config_args(sub.add_parser(
        "superres", help="train the two-stage super-resolver on the config's training part and write its "
                         "super-resolved scenes (HSIGene's augmentation; use them with data.super_resolved)",
        description="Stage 1 learns the RGB bands (a conditional diffusion model), stage 2 every band guided by the "
                    "RGB, both from the training part downsampled by each of superres.scales; then the training part "
                    "is super-resolved at each scale into RUN/scenes (masks by nearest neighbour), a data set marked "
                    "as derived. Default RUN: runs/<config name>_superres."))

    s = sub.add_parser("sample", help="write a synthetic data set from a trained model folder")
    s.add_argument("model_dir", type=Path, help="model folder (a run's model/)")
    s.add_argument("--out", type=Path, required=True, help="output data set folder")
    s.add_argument("-n", "--num-samples", type=int, default=500)
    s.add_argument("--sampler", choices=list(SAMPLERS), default=DEFAULT_SAMPLER)
    s.add_argument("--steps", type=int, default=None,
                   help="network evaluations (default: the sampler's, 1000 for ddpm and 20 for the others)")
    s.add_argument("--eta", type=float, default=0.0, help="DDIM stochasticity (0 = deterministic)")
    s.add_argument("--batch-size", type=int, default=50)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--image-format", choices=["tif", "npy", "zarr"], default="tif")
    s.add_argument("--mask-format", choices=["png", "tif"], default="png")
    s.add_argument("--previews", type=int, default=8)
    s.add_argument("--masks", type=Path, default=None,
                   help="layout models: a folder of masks (PNG/TIFF/npy, the model's patch size) to paint images for")
    s.add_argument("--classes", action="append", default=[], metavar="CLASS=SHARE",
                   help="layout models: raise a class to this share of the pixels, e.g. --classes water=0.2 (repeatable)")
    s.add_argument("--balance", action="store_true", help="layout models: equal shares for every labelled class")
    s.add_argument("--copy-paste", type=float, default=None,
                   help="layout models: chance of pasting a rarer class's region into a real layout (default 0.5)")
    s.add_argument("--guidance", type=float, default=None,
                   help="layout models: classifier-free guidance scale (default 1: conditional, >1 follow the mask "
                        "harder)")
    s.add_argument("--filter", type=float, default=None, metavar="THRESHOLD",
                   help="drop pairs whose labelled pixels agree with a real-trained pixel classifier less often "
                        "than THRESHOLD (redrawn up to --max-attempts times first)")
    s.add_argument("--max-attempts", type=int, default=4)
    s.add_argument("--decode", choices=["none", "residual", "snap", "snap+residual"], default="none",
                   help="class-aware decoding (models with masks): repaint each class region from real training data "
                        "of its class: residual patches (real minus stage-1 reconstruction), the nearest real "
                        "spectra of the class (snap), or both")
    s.add_argument("--snap-alpha", type=float, default=1.0,
                   help="--decode snap: weight of the real spectrum (1 = replaced)")
    s.add_argument("--snap-k", type=int, default=5, help="--decode snap: drawn among this many nearest real spectra")
    s.add_argument("--snap-pool", choices=["all", "accepted"], default="all",
                   help="--decode snap: every real spectrum of the class, or only those the label-cleaning rule "
                        "(--clean-ratio, --clean-calibration) accepts for it")
    s.add_argument("--clean", choices=["none", "loss_ratio"], default="none",
                   help="pixel-level label cleaning (models with masks): a pixel whose loss under a real-trained "
                        "pixel classifier exceeds --clean-ratio x its class's mean loss on held-out real pixels "
                        "becomes the ignore index in the written mask")
    s.add_argument("--clean-ratio", type=float, default=1.25, help="--clean loss_ratio: FreeMask's margin")
    s.add_argument("--clean-calibration", choices=["blocks", "oob"], default="blocks",
                   help="--clean, --hard-classes: the real pixels each class's loss is measured on: training pixels "
                        "of scene blocks a forest did not see (blocks) or the forest's out-of-bag pixels (oob)")
    s.add_argument("--clean-min-kept", type=float, default=0.5,
                   help="--clean: a pair keeping fewer of its labelled pixels is redrawn (then dropped)")
    s.add_argument("--hard-classes", action="store_true",
                   help="spend samples on the classes a real-trained pixel classifier finds hardest (its per-class "
                        "loss): layout models draw layouts toward those targets, joint models redraw samples")
    s.add_argument("--hard-strength", type=float, default=1.0,
                   help="--hard-classes: target share ~ real share x (loss / mean loss) ** STRENGTH")
    s.add_argument("--redraw-layouts", action="store_true",
                   help="layout models: a filter retry also draws a new layout (changes the class shares)")
    s.add_argument("--condition", action="append", default=[], metavar="NAME=FILE",
                   help="controllable models: a condition map file (.npy, PNG, TIFF), content from an .npy vector or an "
                        "RGB image, or text=\"a sentence\" (repeatable; conditions not given are left out)")
    s.add_argument("--condition-guidance", action="append", default=[], metavar="NAME=SCALE",
                   help="controllable models: guidance of one condition (default: the model's, else 1; 0 leaves it out)")
    s.add_argument("--rgb", type=Path, default=None, metavar="DIR_OR_FILE",
                   help="RGB-conditioned (hyperldm) models: spectral versions of these RGB images (PNG, JPEG, BMP, "
                        "(Geo)TIFF, .npy; any size)")
    s.add_argument("-k", "--versions", type=int, default=None,
                   help="with --rgb: spectral versions per RGB image (default 10)")
    s.add_argument("--device", default=None, help="torch device (default: accelerate's choice)")
    s.add_argument("--resume", action="store_true", help="complete an interrupted data set")
    s.add_argument("--overwrite", action="store_true", help="replace an existing data set made by specdm")

    e = sub.add_parser("evaluate", help="score a synthetic data set against the real training split")
    _config_args(e, run_dir=False)
    e.add_argument("synth", type=Path, help="synthetic data set folder (written by specdm run or sample)")
    e.add_argument("--out", type=Path, default=None, help="output folder (default: SYNTH/evaluation)")
    e.add_argument("--encoders", type=Path, default=None,
                   help="feature encoder folder, reused when it holds encoders of the same real data and seed "
                        "(default: OUT/encoders)")
    e.add_argument("--encoder-steps", type=int, default=400, help="training steps of each feature encoder")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--max-spectra", type=int, default=20000, help="spectra per set for sPr/sRec")
    e.add_argument("--max-samples", type=int, default=2000,
                   help="read only the first N synthetic samples (bounds memory; FD depends on N)")
    e.add_argument("--inception", type=Path, default=None,
                   help="local TorchScript Inception file ((N, 3, 299, 299) in [0, 1] -> (N, 2048)) for a "
                        "false-colour FID; skipped without it")
    e.add_argument("--overwrite", action="store_true", help="replace an existing evaluation (and mismatched encoders)")

    b = sub.add_parser("benchmark", help="train downstream models with and without synthetic data; score on held-out "
                                         "test parts",
                       description="Default: the protocol over spatial folds and label settings (docs/folds.md): per "
                                   "fold of the design and label share, a SpecDM generator trained on that fold's "
                                   "training part with those labels, and the arms real, classical (the best recipe, "
                                   "chosen on validation), self_training and classical+specdm, paired seeds, pooled "
                                   "over (fold, seed). --synthetic NAME=DIR (or --design split): the config's own "
                                   "split with the given data sets. --rgb-model MODEL_DIR: the HyperLDM paper's "
                                   "classification experiment: a pixel classifier trained and tested on RGB, on "
                                   "RGB -> HyperLDM spectra (--amounts versions) and on real spectra.")
    b.add_argument("--design", default=None,
                   help="the fold design: auto (default: the packaged design of the data set, else one computed from "
                        "the label map and saved to OUT/design.json), a packaged name (indian_pines, oscd, ...), a "
                        "design file, or split (the config's own split, as before; the default with --synthetic)")
    b.add_argument("--folds", default=None, help="protocol: the folds to run here, e.g. 0,1 (default all; another "
                                                   "process may run the others into the same OUT)")
    b.add_argument("--labels", default=None,
                   help="protocol: label settings, shares of the training part's labels kept (default 0.05,0.2,1)")
    b.add_argument("--generator", choices=["specdm", "none"], default=None,
                   help="protocol: the synthetic set of each cell, trained on the cell's data (default specdm; none: "
                        "no synthetic arm)")
    b.add_argument("config", nargs="?", help="packaged config name (e.g. indian_pines) or path to a YAML file")
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    b.add_argument("--synthetic", action="append", default=[], metavar="NAME=DIR",
                   help="a synthetic data set and its arm name, e.g. two_stream=runs/indian_pines/synthetic (repeatable)")
    b.add_argument("--rgb-model", type=Path, default=None, metavar="MODEL_DIR",
                   help="a method: hyperldm model folder trained on CONFIG's scene: benchmark pixel classification "
                        "on RGB, RGB -> synthetic spectra (--amounts versions) and real spectra instead of "
                        "synthetic data sets (not with --synthetic)")
    b.add_argument("--out", type=Path, default=None,
                   help="output folder (default: runs/<config name>/benchmark, with --rgb-model "
                        "runs/<config name>/rgb_benchmark)")
    b.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of every arm (paired)")
    b.add_argument("--steps", default=None,
                   help="gradient steps of every training (default 2000; the protocol also takes KEY=N items per model "
                        "and/or label setting, e.g. unet=1000,segformer/full=4000; with --rgb-model 1500, the pixel "
                        "classifier's steps of 256 pixels, as in the HyperLDM classification table)")
    b.add_argument("--batch-size", type=int, default=None, help="default 16 (not with --rgb-model)")
    b.add_argument("--lr", type=float, default=None, help="Adam's (initial) learning rate, default 0.001 "
                                                          "(not with --rgb-model: 0.002)")
    b.add_argument("--lr-schedule", choices=["cosine", "constant"], default=None,
                   help="cosine: annealed to 0 over the steps (default); constant")
    b.add_argument("--models", default=None,
                   help="comma-separated: unet,segformer,pixel (segmentation) or siamdiff (change); "
                        "default unet,segformer or siamdiff")
    b.add_argument("--amounts", default="1,3,5",
                   help="synthetic amounts, as multiples of the real window count (with --rgb-model: numbers of "
                        "HyperLDM versions of the training region(s))")
    b.add_argument("--limited", type=float, default=None,
                   help="share of real windows in the limited-real setting (default 0.25; 0: skip)")
    b.add_argument("--arms", default=None, help="comma-separated arms: real,classical,self_training,<NAME>,classical+<NAME>,pretrain+<NAME>,synthetic_only "
                        "(default all but pretrain+<NAME> (synthetic pretraining, then real fine-tuning) and "
                        "self_training (pseudo labels of the real-only model on the training windows))")
    b.add_argument("--classical", default=None,
                   help="recipe of the classical arms: flips, classical (default: flips, rotations, mixup, noise), "
                        "spectral, copypaste, all, or auto (chosen per model on validation rows of the training "
                        "regions)")
    b.add_argument("--primary", default=None, metavar="'ARM vs REFERENCE'",
                   help="the primary comparison, declared before the first training, e.g. 'classical+joint x1 vs "
                        "classical' or 'unet/limited/joint x1 vs real' (default: the first stacked arm vs classical, "
                        "first model, most label-scarce setting); the others are exploratory, Holm-corrected")
    b.add_argument("--self-training-threshold", type=float, default=None,
                   help="arm self_training: the softmax probability a pseudo label needs (default 0.9)")
    b.add_argument("--speed", choices=["fast", "plain"], default=None,
                   help="the task models' training step: fast (default; bf16 + channels-last where the CPU runs bf16 "
                        "natively and it helps the model, fused Adam) or plain (float32, as before)")
    b.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu; with "
                                                      "--rgb-model it samples the versions, classifiers train on cpu)")
    b.add_argument("--sampler", choices=list(SAMPLERS), default=None,
                   help="with --rgb-model: how the HyperLDM versions are drawn (default ddpm, as in the paper)")
    b.add_argument("--sampling-steps", type=int, default=None,
                   help="with --rgb-model: the sampler's steps (default: the sampler's, at most the model's T)")
    b.add_argument("--task", choices=["denoise", "sr4"], default=None,
                   help="a restoration benchmark (HSIGene's Tables 8/9) instead of the downstream one: a compact "
                        "denoiser (Gaussian noise, --noise-sigma) or x4 super-resolver trained on real, --synthetic "
                        "and real+synthetic windows, paired seeds, PSNR/SSIM/SAM on the held-out regions (and "
                        "--cross-scene); OUT default runs/<config name>/restoration_<task>")
    b.add_argument("--cross-scene", default=None, metavar="CONFIG2",
                   help="with --task: also test on every scene of this config (same band count: align both with "
                        "data.align), a scene the generator never saw")
    b.add_argument("--noise-sigma", type=float, default=None, help="with --task denoise: the noise's sigma in "
                                                                     "normalized units (default 0.2)")
    b.add_argument("--resume", action="store_true", help="continue OUT/benchmark.json, skipping finished runs")
    b.add_argument("--overwrite", action="store_true", help="replace an existing OUT/benchmark.json")
    b.add_argument("--report-only", type=Path, default=None, metavar="OUT",
                   help="only rebuild OUT/report.md and report.html from OUT/benchmark.json")

    v = sub.add_parser("view", help="write a static web page (one HTML file) to browse a synthetic data set")
    v.add_argument("dataset", type=Path, help="synthetic data set folder (written by specdm run or sample)")
    v.add_argument("--out", type=Path, default=None, help="the HTML file (default: DATASET/view.html)")
    v.add_argument("--max-samples", type=int, default=200, help="embed at most the first N samples")

    k = sub.add_parser("conditions", help="extract the condition maps of an image (controllable synthesis)")
    k.add_argument("image", type=Path, help="RGB image (PNG, JPEG, TIFF, .npy (H, W, 3) in [0, 1]); with --model also "
                                            "a spectral window .npy (bands, rows, cols) in the model's units")
    k.add_argument("--out", type=Path, required=True, help="folder for <name>.npy (and .png) per condition")
    k.add_argument("--model", type=Path, default=None, help="controllable model folder: its conditions and parameters")

    f = sub.add_parser("folds", help="compute a spatial fold design from a config's label map and write it",
                       description="Blocks of one scene (or whole scenes, when the config loads several) assigned to "
                                   "k folds so that every class with enough pixels sits in the training and the test "
                                   "part of every fold (docs/folds.md). Use the file as data.split: {kind: folds, "
                                   "design: FILE, fold: I}.")
    f.add_argument("config", nargs="?", help="packaged config name (e.g. indian_pines) or path to a YAML file")
    f.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    f.add_argument("--out", type=Path, default=None, help="the design file to write (.json)")
    f.add_argument("--show", default=None, metavar="DESIGN",
                   help="only print the class table of a design file or packaged design (indian_pines, oscd, ...)")
    f.add_argument("--k", type=int, default=None, help="number of folds (default 4; scenes: at most one per scene)")
    f.add_argument("--block", type=int, default=None,
                   help="block size in pixels (default a quarter of data.patch_size)")
    f.add_argument("--guard", type=int, default=None,
                   help="pixels between a fold's test part and its training part (default 2)")
    f.add_argument("--seed", type=int, default=0, help="seed of the search")
    f.add_argument("--restarts", type=int, default=None, help="random starts of the search (default 4)")
    f.add_argument("--steps", type=int, default=None,
                   help="block moves per start (default 12 per labelled block, at most 20000)")
    f.add_argument("--from-split", action="store_true",
                   help="write the config's own rows, cols or scenes split as a one-fold design instead of searching "
                        "(its test part is fold 0)")
    f.add_argument("--name", default=None, help="the design's name (default: the file name without .json)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing file")

    a = sub.add_parser("apply", help="an operation on a trained model folder (specdm apply --list)",
                       description="Operations start from a trained model folder and write into their own folder "
                                   "(never into the model): specdm apply OPERATION MODEL_DIR --out DIR [--config "
                                   "CONFIG] [--set KEY=VALUE].")
    a.add_argument("operation", nargs="?", help="the operation (specdm apply --list)")
    a.add_argument("model_dir", type=Path, nargs="?", help="model folder (a run's model/)")
    a.add_argument("--out", type=Path, default=None, help="output folder of the operation")
    a.add_argument("--config", default=None, help="the config whose real data the operation reads (same method)")
    a.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the operation (repeatable)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing output folder made by specdm")
    a.add_argument("--list", action="store_true", help="list the operations")

    c = sub.add_parser("config", help="print a config with all defaults")
    c.add_argument("config", nargs="?", default="indian_pines")
    c.add_argument("--list", action="store_true", help="list the packaged configs")
    return parser


def _input_options(args) -> dict:
    """The input options ``specdm sample`` was given (option -> value; flags left out are not in it): the model
    folder's method takes those of its input kind and refuses the others
    (:func:`specdm.recipes.sampling.sample_model`)."""
    given = {"masks_dir": None if args.masks is None else str(args.masks),
             "class_targets": _pairs(args.classes, "--classes", True, "CLASS=SHARE, e.g. water=0.2") or None,
             "balance": args.balance or None, "copy_paste": args.copy_paste, "guidance_scale": args.guidance,
             "redraw_layouts": args.redraw_layouts or None,
             "conditions": _pairs(args.condition, "--condition") or None,
             "guidance": _pairs(args.condition_guidance, "--condition-guidance", number=True) or None,
             "rgb": args.rgb, "versions": args.versions}
    return {k: v for k, v in given.items() if v is not None}


def _pairs(items: list[str], flag: str, number: bool = False, usage: str | None = None) -> dict:
    """``NAME=VALUE`` flags as a dict (``number``: float values); a malformed one is a ConfigError."""
    out = {}
    for item in items:
        name, sep, value = item.rpartition("=") if number else item.partition("=")
        if number and sep:
            try:
                value = float(value)
            except ValueError:
                sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"{flag} '{item}' must look like {usage or ('NAME=SCALE' if number else 'NAME=FILE')}")
        if name.strip() in out:
            raise ConfigError(f"{flag} gives '{name.strip()}' twice")
        out[name.strip()] = value
    return out


def _check_benchmark_flags(args) -> None:
    """One-line ConfigErrors for flags of the other benchmark (``--rgb-model`` or ``--synthetic``)."""
    if args.rgb_model is None:
        rgb_only = [f for f, v in (("--sampler", args.sampler), ("--sampling-steps", args.sampling_steps)) if v is not None]
        if rgb_only:
            raise ConfigError(f"{' and '.join(rgb_only)} {'apply' if len(rgb_only) > 1 else 'applies'} only with "
                              "--rgb-model MODEL_DIR")
        return
    protocol = [f for f, v in (("--design", args.design), ("--folds", args.folds), ("--labels", args.labels),
                               ("--generator", args.generator), ("--task", args.task),
                               ("--cross-scene", args.cross_scene)) if v is not None]
    if protocol:
        raise ConfigError(f"{', '.join(protocol)} belong to the protocol over folds or the restoration benchmark, "
                          "not to --rgb-model")
    if args.synthetic:
        raise ConfigError("--rgb-model and --synthetic are two different benchmarks; give one of them "
                          "(--rgb-model: pixel classification from RGB via the model; --synthetic: data sets)")
    if args.models is not None and args.models.split(",") != ["pixel"]:
        raise ConfigError(f"--rgb-model trains only the pixel classifier; --models {args.models} does not apply "
                          "(leave it out or give --models pixel)")
    other = [f for f, v in (("--batch-size", args.batch_size), ("--lr", args.lr), ("--lr-schedule", args.lr_schedule),
                            ("--limited", args.limited), ("--arms", args.arms), ("--classical", args.classical),
                            ("--primary", args.primary), ("--self-training-threshold", args.self_training_threshold),
                            ("--speed", args.speed))
             if v is not None]  # fmt: skip
    if other:
        raise ConfigError(f"{', '.join(other)} {'do' if len(other) > 1 else 'does'} not apply with --rgb-model (its "
                          "classifier takes batches of 256 pixels, Adam from 0.002, cosine; its arms are rgb, real and "
                          "synthetic x<each amount>)")


def _task_of(cfg) -> str:
    """The task of the config's data (segmentation or change), read from the first scene."""
    from specdm.data.datamodule import load_data

    return load_data(cfg.data)[0].task


def _benchmark_protocol(args, cfg, command: str) -> int:
    """``specdm benchmark CONFIG [--design D]``: the protocol over spatial folds and label settings."""
    from specdm.config import BenchmarkOptions, validate
    from specdm.evaluation.benchmark.protocol import parse_labels, parse_primary, parse_steps
    from specdm.recipes.benchmark import DEFAULT_ARMS, run_protocol

    split_only = [f for f, v in (("--amounts", args.amounts != "1,3,5" or None), ("--limited", args.limited),
                                 ("--arms", args.arms), ("--overwrite", args.overwrite or None)) if v is not None]
    if split_only:
        raise ConfigError(f"{', '.join(split_only)} {'apply' if len(split_only) > 1 else 'applies'} to the config's own "
                          "split (--design split); the protocol runs the arms real, classical, self_training and "
                          "classical+<generator> x1 in every fold and label setting (--labels), and continues with "
                          "--resume (to start afresh, give another --out)")
    given = {"seeds": args.seeds, "batch_size": args.batch_size, "lr": args.lr,
             "lr_schedule": args.lr_schedule, "models": args.models and args.models.split(","),
             "classical": args.classical or "auto", "self_training_threshold": args.self_training_threshold,
             "speed": args.speed}
    bo = validate(BenchmarkOptions, {k: v for k, v in given.items() if v is not None}, "specdm benchmark")
    labels = parse_labels(args.labels or "0.05,0.2,1")
    generator = args.generator or "specdm"
    folds = None
    if args.folds:
        try:
            folds = sorted({int(f) for f in args.folds.split(",")})
        except ValueError:
            raise ConfigError(f"--folds '{args.folds}' must be comma-separated fold numbers, e.g. 0,1") from None
    from specdm.evaluation.benchmark.plan import DEFAULT_MODELS

    models = bo.models
    primary = None
    if bo.primary:
        arms = [*DEFAULT_ARMS, *([f"classical+{generator}"] if generator != "none" else [])]
        primary = parse_primary(bo.primary, models or list(DEFAULT_MODELS[_task_of(cfg)]), labels, arms)
    out = args.out or Path("runs") / cfg.name / "benchmark"
    if (out / "protocol.json").is_file() and not args.resume:
        raise OutputError("holds a benchmark protocol", out / "protocol.json",
                          hint="pass --resume to continue it, or give another --out")
    steps = parse_steps(args.steps or "2000", models or list(DEFAULT_MODELS[_task_of(cfg)]), labels)
    result = run_protocol(cfg, out, args.design or "auto", folds, labels, generator, models, bo.seeds, steps,
                          bo.batch_size, bo.lr, bo.lr_schedule, bo.classical, primary, bo.self_training_threshold,
                          bo.speed, args.resume, command, args.device)
    print(Path(result["output"]["markdown"]).read_text())
    print(f"benchmark: {result['output']['json']}\nreport: {result['output']['markdown']}")
    return 0


def _benchmark_restoration(args, cfg, command: str) -> int:
    """``specdm benchmark CONFIG --task denoise|sr4 --synthetic NAME=DIR``: the restoration benchmark."""
    from specdm.config import BenchmarkOptions, load_config, validate
    from specdm.evaluation.benchmark.plan import parse_synthetic
    from specdm.evaluation.benchmark.restoration import restoration_benchmark
    from specdm.evaluation.restoration import DEFAULT_SIGMA

    protocol = [f for f, v in (("--design", args.design), ("--folds", args.folds), ("--labels", args.labels),
                               ("--generator", args.generator)) if v is not None]
    if protocol or args.rgb_model is not None:
        raise ConfigError(f"{', '.join(protocol or ['--rgb-model'])} do(es) not apply with --task: the restoration "
                          "benchmark uses the config's own split")
    other = [f for f, v in (("--models", args.models), ("--limited", args.limited), ("--classical", args.classical),
                            ("--primary", args.primary), ("--self-training-threshold", args.self_training_threshold),
                            ("--lr-schedule", args.lr_schedule), ("--amounts", args.amounts != "1,3,5" or None))
             if v is not None]  # fmt: skip
    if other:
        raise ConfigError(f"{', '.join(other)} {'do' if len(other) > 1 else 'does'} not apply with --task (arms "
                          "real, NAME and real+NAME; compact restorers, Adam with a cosine)")
    if args.noise_sigma is not None and (args.task != "denoise" or not args.noise_sigma > 0):
        raise ConfigError("--noise-sigma takes a positive sigma, with --task denoise")
    if args.steps is not None and not args.steps.isdigit():
        raise ConfigError(f"--steps with --task takes one number of steps, got '{args.steps}'")
    given = {"seeds": args.seeds, "steps": int(args.steps) if args.steps else 1000, "batch_size": args.batch_size,
             "lr": args.lr}
    bo = validate(BenchmarkOptions, {k: v for k, v in given.items() if v is not None}, "specdm benchmark")
    synthetic = parse_synthetic(args.synthetic) if args.synthetic else {}
    cross = load_config(args.cross_scene) if args.cross_scene else None
    result = restoration_benchmark(
        cfg, args.task, synthetic, args.out or Path("runs") / cfg.name / f"restoration_{args.task}", seeds=bo.seeds,
        steps=bo.steps, batch_size=bo.batch_size, lr=bo.lr, arms=args.arms and args.arms.split(","), cross=cross,
        sigma=args.noise_sigma or DEFAULT_SIGMA, resume=args.resume, overwrite=args.overwrite, command=command,
        device=args.device)
    print(Path(result["output"]["markdown"]).read_text())
    print(f"benchmark: {result['output']['json']}\nreport: {result['output']['markdown']}")
    return 0


def _benchmark_rgb(args, cfg, command: str) -> int:
    """``specdm benchmark CONFIG --rgb-model MODEL_DIR``."""
    from specdm.config import BenchmarkOptions, validate
    from specdm.evaluation.benchmark.plan import parse_amounts
    from specdm.evaluation.benchmark.report import format_markdown
    from specdm.evaluation.benchmark.rgb import RGB_SAMPLER, rgb_benchmark
    from specdm.pipelines import load_pipeline

    bo = validate(BenchmarkOptions, {"seeds": args.seeds, "steps": args.steps or 1500,
                                     "amounts": parse_amounts(args.amounts)}, "specdm benchmark")
    if args.sampling_steps is not None and args.sampling_steps < 1:
        raise ConfigError(f"--sampling-steps must be at least 1, got {args.sampling_steps}")
    result = rgb_benchmark(
        cfg, args.rgb_model, args.out or Path("runs") / cfg.name / "rgb_benchmark", seeds=bo.seeds, steps=bo.steps,
        amounts=bo.amounts, resume=args.resume, overwrite=args.overwrite, command=command,
        sampler=args.sampler or RGB_SAMPLER, num_inference_steps=args.sampling_steps, load_model=load_pipeline,
        device=args.device,
    )
    print(format_markdown(result))
    print(f"benchmark: {result['output']['json']}\nreport: {result['output']['markdown']}\n"
          f"html: {result['output']['html']}")
    return 0


def _apply(args, command: str) -> int:
    """``specdm apply OPERATION MODEL_DIR --out DIR``: an operation on a trained model folder."""
    from specdm.config import load_config
    from specdm.operations import OPERATIONS, apply

    if args.list:
        print("\n".join(f"{name}: {op.summary}" for name, op in OPERATIONS.items()))
        return 0
    if args.operation is None or args.model_dir is None or args.out is None:
        raise ConfigError("specdm apply needs an OPERATION, a MODEL_DIR and --out DIR (or --list)")
    options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set '{item}' must look like KEY=VALUE")
        options[key] = yaml.safe_load(value)
    cfg = load_config(args.config) if args.config else None
    path = apply(args.operation, args.model_dir, args.out, options, cfg, args.overwrite, command)
    print(f"{args.operation}: {path}")
    return 0


def _folds(args, command: str) -> int:
    """``specdm folds CONFIG --out FILE``: compute, write and show a fold design (``--show DESIGN``: show one)."""
    from specdm.config import load_config
    from specdm.data.folds import DEFAULT_RESTARTS, design_table, load_design, save_design

    if args.show is not None:
        if args.config is not None or args.out is not None:
            raise ConfigError("--show prints an existing design; give it without CONFIG and --out")
        design = load_design(args.show)
        print(design_table(design))
        _folds_summary(design, design["source"])
        return 0
    if args.config is None or args.out is None:
        raise ConfigError("specdm folds needs a CONFIG and --out FILE (or --show DESIGN)")
    cfg = load_config(args.config, args.overrides)
    from specdm.data.datamodule import load_data
    from specdm.data.splits import compute_design, design_from_split

    searched = [f for f, v in (("--k", args.k), ("--block", args.block), ("--guard", args.guard),
                               ("--restarts", args.restarts), ("--steps", args.steps)) if v is not None]
    if args.from_split and (searched or args.seed):
        raise ConfigError(f"--from-split writes the config's split as it is; {', '.join(searched or ['--seed'])} "
                          f"set(s) a search")
    for flag, value, low in (("--k", args.k, 2), ("--block", args.block, 1), ("--guard", args.guard, 0),
                             ("--restarts", args.restarts, 1), ("--steps", args.steps, 1)):
        if value is not None and value < low:
            raise ConfigError(f"{flag} must be at least {low}, got {value}")
    out = args.out
    if out.suffix != ".json":
        raise ConfigError("the design file must end in .json", out)
    if out.exists() and not args.overwrite:
        raise OutputError("exists already", out, hint="pass --overwrite to replace it")
    scenes = load_data(cfg.data)
    if args.from_split:
        design = design_from_split(scenes, cfg.data.split.model_dump(), cfg.data.patch_size, args.name or out.stem)
    else:
        design = compute_design(scenes, cfg.data.patch_size, args.k, args.block, args.guard, args.seed,
                                args.restarts or DEFAULT_RESTARTS, args.steps, args.name or out.stem)
    design["made_by"] = command
    try:
        save_design(design, out)
    except OSError as e:
        raise OutputError(f"cannot be written ({e.strerror})", out) from None
    print(design_table(design))
    _folds_summary(design, out)
    return 0


def _folds_summary(design: dict, where) -> None:
    unit = f"{design['block']}-pixel blocks, guard {design['guard']}" if design["unit"] == "blocks" else "whole scenes"
    plural = "s" if design["k"] > 1 else ""
    missing = {design["class_names"][c] for rec in design["folds"] for c in rec["missing"]}
    print(f"\n{design['k']} fold{plural} of {unit}; {len(design['required_classes'])} classes with at least "
          f"{design['min_pixels']} labelled pixels, "
          + (f"not on both sides of every fold: {', '.join(sorted(missing))}" if missing
             else "all on both sides of every fold")
          + f" (cells: window-reachable training / test pixels, bold: not on both sides)\ndesign: {where}")


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _format_warning  # one readable line, not a source location
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "specdm " + shlex.join(argv)
    try:
        return _dispatch(args, command)
    except SpecdmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command with --resume to continue", file=sys.stderr)
        return 130


def _dispatch(args, command: str) -> int:
    from specdm import __version__

    if args.version:
        print(__version__)
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.command is None:
        build_parser().print_help()
        return 1
    if args.command == "view":
        from specdm.output.viewer import write_viewer

        page = write_viewer(args.dataset, args.out, args.max_samples)
        print(f"viewer: {page}\nopen it in a browser, or serve it: python -m http.server -d {page.parent}")
        return 0
    from specdm.config import load_config, packaged_configs

    if args.command == "config":
        if args.list:
            print("\n".join(packaged_configs()))
        else:
            print(yaml.safe_dump(load_config(args.config).model_dump(mode="json"), sort_keys=False), end="")
        return 0

    from specdm.config import BenchmarkOptions, EvaluateOptions, SamplingConfig, validate

    if args.command == "folds":
        return _folds(args, command)
    if args.command == "apply":
        return _apply(args, command)
    if args.command == "conditions":
        from specdm.recipes.controllable import extract_conditions

        files = extract_conditions(args.image, args.out, args.model)
        print("\n".join(f"{n}: {f}" for n, f in files.items()))
        return 0
    if args.command == "sample":
        from specdm.recipes.sampling import sample_model

        opts = validate(SamplingConfig, {
            "num_samples": args.num_samples, "sampler": args.sampler, "num_inference_steps": args.steps,
            "eta": args.eta, "batch_size": args.batch_size, "seed": args.seed, "image_format": args.image_format,
            "mask_format": args.mask_format, "previews": args.previews, "filter_threshold": args.filter,
            "max_attempts": args.max_attempts, "decode": args.decode, "snap_alpha": args.snap_alpha,
            "snap_k": args.snap_k, "snap_pool": args.snap_pool, "clean": args.clean, "clean_ratio": args.clean_ratio,
            "clean_min_kept": args.clean_min_kept, "clean_calibration": args.clean_calibration, "hard_classes": args.hard_classes,
            "hard_strength": args.hard_strength}, "specdm sample")
        card = sample_model(args.model_dir, args.out, opts, _input_options(args), args.resume, args.overwrite, command,
                            args.device)
        print(f"synthetic data set: {args.out}\ndataset card: {card}")
        return 0

    if args.command == "benchmark" and args.report_only is not None:
        from specdm.evaluation.benchmark.report import rewrite_report

        paths = rewrite_report(args.report_only)
        print(f"report: {paths['markdown']}\nhtml: {paths['html']}")
        return 0
    if args.command == "benchmark" and args.config is None:
        raise ConfigError("benchmark needs a CONFIG (or --report-only OUT)")
    if args.command == "benchmark":
        _check_benchmark_flags(args)

    cfg = load_config(args.config, args.overrides)
    if args.command == "evaluate":
        eo = validate(EvaluateOptions, {"encoder_steps": args.encoder_steps, "seed": args.seed,
                                        "max_spectra": args.max_spectra, "max_samples": args.max_samples},
                      "specdm evaluate")
        from specdm.evaluation.evaluate import evaluate, format_markdown

        result = evaluate(cfg, args.synth, args.out, args.encoders, eo.seed, eo.max_spectra, eo.encoder_steps,
                          args.inception, args.overwrite, command, eo.max_samples)
        print(format_markdown(result))
        print(f"evaluation: {result['output']['json']}\nreport: {result['output']['markdown']}")
        return 0
    if args.command == "benchmark" and args.rgb_model is not None:
        return _benchmark_rgb(args, cfg, command)
    if args.command == "benchmark" and args.task is not None:
        return _benchmark_restoration(args, cfg, command)
    if args.command == "benchmark" and (args.design or ("split" if args.synthetic else "auto")) != "split":
        return _benchmark_protocol(args, cfg, command)
    if args.command == "benchmark":
        from specdm.evaluation.benchmark.plan import parse_amounts, parse_synthetic

        if args.folds or args.labels or args.generator:
            raise ConfigError("--folds, --labels and --generator belong to the protocol over folds; the config's own "
                              "split (--design split, or --synthetic) has none")
        if args.cross_scene is not None or args.noise_sigma is not None:
            raise ConfigError("--cross-scene and --noise-sigma belong to the restoration benchmark (--task)")

        given = {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                 "lr_schedule": args.lr_schedule, "models": args.models and args.models.split(","),
                 "amounts": parse_amounts(args.amounts), "limited": args.limited,
                 "arms": args.arms and args.arms.split(","), "classical": args.classical, "primary": args.primary,
                 "self_training_threshold": args.self_training_threshold, "speed": args.speed}
        bo = validate(BenchmarkOptions, {k: v for k, v in given.items() if v is not None}, "specdm benchmark")
        synthetic = parse_synthetic(args.synthetic)
        from specdm.evaluation.benchmark.run import benchmark
        from specdm.evaluation.benchmark.report import format_markdown

        result = benchmark(
            cfg, synthetic, args.out or Path("runs") / cfg.name / "benchmark", seeds=bo.seeds,
            steps=bo.steps, batch_size=bo.batch_size, lr=bo.lr, lr_schedule=bo.lr_schedule,
            models=bo.models, amounts=bo.amounts, limited=bo.limited,
            arms=bo.arms, resume=args.resume, overwrite=args.overwrite, command=command,
            device=args.device, classical=bo.classical, primary=bo.primary,
            self_training_threshold=bo.self_training_threshold, speed=bo.speed,
        )
        print(format_markdown(result))
        print(f"benchmark: {result['output']['json']}\nreport: {result['output']['markdown']}\n"
              f"html: {result['output']['html']}")
        return 0
    if args.command == "superres":
        from specdm.recipes.superres import run_superres

        run_dir = args.run_dir or Path("runs") / f"{cfg.name}_superres"
        card = run_superres(cfg, run_dir, args.resume, args.overwrite, command)
        print(f"super-resolver: {run_dir / 'model'}\nsuper-resolved scenes: {card.parent}\ncard: {card}")
        return 0
    from specdm.recipes import run, train

    run_dir = args.run_dir or Path("runs") / cfg.name
    if args.command == "run":
        card = run(cfg, run_dir, args.resume, args.overwrite, command)
        print(f"model: {run_dir / 'model'}\nsynthetic data set: {card.parent}\ndataset card: {card}")
    elif args.command == "train-autoencoder":
        train(cfg, run_dir, "stage1", args.resume, args.overwrite)
        print(f"autoencoder: {run_dir / 'model' / 'autoencoder'}")
    elif args.command == "train-diffusion":
        if (run_dir / "model" / "unet").is_dir() and not (args.resume or args.overwrite):
            raise OutputError("already holds a trained denoiser", run_dir / "model" / "unet",
                              hint="pass --resume to keep it or --overwrite to retrain it")
        train(cfg, run_dir, "stage2", args.resume)
        print(f"model: {run_dir / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
