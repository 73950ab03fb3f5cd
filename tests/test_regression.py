"""SpecDM's outputs do not change when the code moves: a tiny fixed-seed run writes, bit for bit,
the synthetic images and masks that the code before the layout change wrote
(``tests/data/regression/reference.json``, made by ``generate.py`` beside it; on a host whose oneDNN runs AMX
kernels, ``reference_amx.json``, made there by the code before the speed features). The run takes
``train.speed: plain``: switching the speed features off reproduces the earlier outputs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "data" / "regression"
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

REFERENCE = json.loads(generate.reference_file().read_text())


@pytest.mark.parametrize("case", sorted(generate.CASES))
def test_tiny_run_is_bitwise_unchanged(case, tmp_path):
    got = generate.run_case(tmp_path, **generate.CASES[case])
    for key, ref in REFERENCE["cases"][case].items():
        want = generate.decode(ref)
        assert got[key].shape == want.shape and got[key].dtype == want.dtype, key
        diff = np.abs(got[key].astype(np.float64) - want.astype(np.float64)).max()
        assert np.array_equal(got[key], want), f"{case} {key} differs from the reference (max |diff| {diff})"
    # the reference is not degenerate: several classes and varied spectra
    assert len(np.unique(got["masks"])) >= 2 and got["images"].std() > 0
