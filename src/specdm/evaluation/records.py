"""What the evaluation commands write: JSON-safe records, atomic JSON files, progress lines."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from specdm.errors import OutputError

__all__ = ["json_safe", "log", "write_json"]


def log(msg: str) -> None:
    """A progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


def json_safe(obj):
    """Plain JSON types; NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path: Path, result: dict, indent: int = 1) -> None:
    """``result`` (made JSON-safe) written to ``path`` through a temporary file, so a reader never sees half
    of it; :class:`OutputError` when it cannot be written."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(json_safe(result), indent=indent, allow_nan=False))
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write ({e.strerror or e})", path) from None
