"""The Winograd probe's two F(2x2, 3x3) forms compute the same convolution as ``nn.Conv2d``.

The probe (benchmarks/winograd_probe.py) reports how much a Winograd export would save; its
claim is only worth something if both forms are the convolution they replace.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def probe():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("winograd_probe", BENCH / "winograd_probe.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("shape", [(3, 8, 14, 14), (1, 16, 32, 32), (2, 4, 6, 10)])
@pytest.mark.parametrize("form", ["WinogradSlices", "WinogradConvs"])
def test_winograd_matches_direct_convolution(probe, shape, form):
    torch.manual_seed(1)
    c = shape[1]
    conv = nn.Conv2d(c, c, 3, padding=1).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        ref = conv(x)
        out = getattr(probe, form)(conv).eval()(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)


def test_filter_transform_reproduces_one_tile(probe):
    """One 4x4 tile: A^T [(G g G^T) * (B^T d B)] A is the 2x2 'valid' correlation of d with g."""
    torch.manual_seed(2)
    g = torch.randn(1, 1, 3, 3)
    d = torch.randn(4, 4)
    u = probe.filter_transform(g).reshape(4, 4)
    v = probe.B_T @ d @ probe.B_T.T
    y = probe.A_T @ (u * v) @ probe.A_T.T
    ref = torch.nn.functional.conv2d(d.view(1, 1, 4, 4), g)[0, 0]
    assert torch.allclose(y, ref, atol=1e-5)
