"""Stage-1 reconstruction quality of config variants: PSNR/SSIM/SAM on held-out windows, border artefacts.

    python bench/stage1_quality.py CONFIG LABEL[:key=value[,key=value...]] [...] [--out DIR] [--threads N]

Each variant trains stage 1 only (``specdm train-autoencoder CONFIG --set key=value``) in
``runs/stage1/<config>/<label>`` (resumed when it is there) and reads the
``model/stage1_quality.json`` it writes. Results: ``DIR/<config>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import REPO, command_line, machine_info

from specdm.cli import main as specdm


def parse_variant(text: str) -> tuple[str, list[str]]:
    label, _, rest = text.partition(":")
    return label, [kv for kv in rest.split(",") if kv]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("variants", nargs="+")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stage1")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    name = Path(a.config).stem
    a.out.mkdir(parents=True, exist_ok=True)
    result_file = a.out / f"{name}.json"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {"rows": {}}
    result.update({"config": a.config, "machine": machine_info()})
    for v in a.variants:
        label, sets = parse_variant(v)
        run = REPO / "runs" / "stage1" / name / label
        quality = run / "model" / "stage1_quality.json"
        t = time.time()
        if not quality.is_file() and (run / "model" / "autoencoder").is_dir():  # trained: measure again
            from specdm.config import load_config
            from specdm.operations import apply

            cfg = load_config(a.config, sets)
            report = apply("stage1-report", run / "model", run / "stage1_report", cfg=cfg, overwrite=True)
            quality.write_text(json.dumps(json.loads(report.read_text())["report"], indent=1))
        if not quality.is_file():
            args = (["--threads", str(a.threads)] if a.threads else []) + ["train-autoencoder", a.config, "--run-dir", str(run)]
            args += [x for kv in sets for x in ("--set", kv)] + (["--resume"] if run.exists() else [])
            if specdm(args) != 0:
                raise SystemExit(f"variant {label} failed")
        wall = result["rows"].get(label, {}).get("wall_s") if quality.is_file() and label in result["rows"] else None
        result["rows"][label] = {"set": sets, "wall_s": wall or round(time.time() - t, 1),
                                 **json.loads(quality.read_text()), "command": command_line()}
        result_file.write_text(json.dumps(result, indent=1))
    lines = [f"Stage 1 on `{a.config}` (`{command_line()}`)", "",
             "| variant | overrides | held-out PSNR (dB) | SSIM | SAM (rad) | L1 | ring/interior | worst corner | "
             "mask agr. | train PSNR | train ring | train worst corner | wall (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in result["rows"].items():
        h, tr = r["held_out"] or r["train"], r["train"]
        corners = ("top_left", "top_right", "bottom_left", "bottom_right")
        corner, tcorner = max(h["edges"][k] for k in corners), max(tr["edges"][k] for k in corners)
        ssim = "-" if h["ssim"] is None else f"{h['ssim']:.3f}"
        lines.append(f"| {label} | {', '.join(r['set']) or 'defaults'} | {h['psnr']:.2f} | {ssim} | {h['sam_rad']:.3f} | "
                     f"{h['l1']:.4f} | {h['edges']['ring']:.2f} | {corner:.2f} | {h['mask_agreement']:.3f} | "
                     f"{tr['psnr']:.2f} | {tr['edges']['ring']:.2f} | {tcorner:.2f} | {r['wall_s']:.0f} |")
    (a.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
