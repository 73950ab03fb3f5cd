"""Outputs do not change when the code moves: tiny fixed-seed runs of every method write, bit for bit, the synthetic
images and masks that earlier code wrote (``tests/data/regression/``, made by ``generate.py`` beside it, whose
docstring says which code made each case).

References are per host family: ``reference.json`` for AVX-512/AVX2 hosts (the CI and usual development hosts)
holds the two SpecDM cases; ``reference_amx.json`` (hosts whose oneDNN runs AMX kernels) holds those and the
``layout``, ``controllable`` and ``hyperldm`` cases, which were made on an AMX host by the code before the
run-skeleton change. A case without a reference for this host's family is skipped with that reason: the CI host
runs the two SpecDM cases and skips the other three until someone with such a host adds them
(``generate.py --cases layout,controllable,hyperldm`` run there by the code of commit 1970318).
The runs take ``train.speed: plain``: switching the speed features off reproduces the earlier outputs."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "data" / "regression"
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

FAMILY = generate.host_family()
REFERENCE = json.loads(generate.reference_file().read_text())


@pytest.mark.parametrize("case", sorted(generate.CASES))
def test_tiny_run_is_bitwise_unchanged(case, tmp_path):
    if case not in REFERENCE["cases"]:
        pytest.skip(f"no '{case}' reference for this host family ({FAMILY}: {generate.reference_file().name}); "
                    "make one with tests/data/regression/generate.py run by the code its docstring names")
    got = generate.run_case(tmp_path, **generate.CASES[case])
    assert sorted(got) == sorted(REFERENCE["cases"][case])
    for key, ref in REFERENCE["cases"][case].items():
        want = generate.decode(ref)
        assert got[key].shape == want.shape and got[key].dtype == want.dtype, key
        diff = np.abs(got[key].astype(np.float64) - want.astype(np.float64)).max()
        assert np.array_equal(got[key], want), f"{case} {key} differs from the reference (max |diff| {diff})"
    # the reference is not degenerate: several classes and varied spectra
    assert got["images"].std() > 0
    if "masks" in got:
        assert len(np.unique(got["masks"])) >= 2
