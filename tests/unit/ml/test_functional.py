"""Pooling correctness against hand-computed values on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from imgsearch_gui.ml import functional as LF


def test_l2n_gives_unit_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    assert torch.allclose(LF.l2n(x), torch.tensor([[0.6, 0.8], [0.0, 1.0]]), atol=1e-6)


def test_mac_sum_spoc_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.5], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    assert LF.mac(x).tolist() == [[4.0, 0.5]]
    assert LF.sum_pool(x).tolist() == [[10.0, 0.5]]
    assert LF.spoc(x).tolist() == [[2.5, 0.125]]


def test_gem_by_hand_and_limits():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    expected = ((1 + 8 + 27 + 64) / 4) ** (1 / 3)
    assert LF.gem(x, p=3).item() == pytest.approx(expected, rel=1e-5)
    y = torch.rand(2, 8, 5, 7) + 0.01
    assert torch.allclose(LF.gem(y, p=1.0), LF.spoc(y), atol=1e-5)
    assert torch.allclose(LF.gem(y, p=200.0), LF.mac(y), rtol=0.02)


def test_rmac_regions_square_7x7():
    regions = LF.rmac_regions(7, 7, 3)
    level1 = [(0, 0, 7, 7)]
    level2 = [(t, l, 4, 4) for t in (0, 3) for l in (0, 3)]
    level3 = [(t, l, 3, 3) for t in (0, 2, 4) for l in (0, 2, 4)]
    assert list(regions) == level1 + level2 + level3


def test_rmac_regions_landscape_7x10():
    # w = 7, long side 10: the overlap rule picks one extra region along the width.
    regions = LF.rmac_regions(7, 10, 3)
    assert list(regions[:2]) == [(0, 0, 7, 7), (0, 3, 7, 7)]
    level2 = [(t, l, 4, 4) for t in (0, 3) for l in (0, 3, 6)]
    level3 = [(t, l, 3, 3) for t in (0, 2, 4) for l in (0, 2, 4, 7)]
    assert list(regions[2:]) == level2 + level3
    for top, left, h, w in regions:
        assert top + h <= 7 and left + w <= 10


def test_rmac_regions_portrait_is_transposed_landscape():
    land = LF.rmac_regions(7, 10, 3)
    port = LF.rmac_regions(10, 7, 3)
    assert sorted((l, t, w, h) for t, l, h, w in port) == sorted(land)


def test_rmac_regions_overlap_is_about_40_percent():
    regions = LF.rmac_regions(20, 30, 3)
    side = 10  # level 3 on a 20-cell short side
    lefts = sorted({l for _, l, _, w in regions if w == side})
    overlaps = [(side - (b - a)) / side for a, b in zip(lefts, lefts[1:], strict=False)]
    assert all(0.2 <= o <= 0.6 for o in overlaps), overlaps


def test_rmac_value_by_hand_on_one_channel_pair():
    # A 2-channel 3x3 map: with L=1 the only region is the whole map, so R-MAC = 2 * l2n(MAC).
    x = torch.zeros(1, 2, 3, 3)
    x[0, 0, 0, 0] = 3.0
    x[0, 1, 2, 2] = 4.0
    out = LF.rmac(x, levels=1)
    assert torch.allclose(out, 2 * torch.tensor([[0.6, 0.8]]), atol=1e-5)


def test_rmac_sums_normalised_regions():
    x = torch.rand(1, 4, 7, 7)
    manual = LF.l2n(LF.mac(x))
    for t, l, h, w in LF.rmac_regions(7, 7, 3):
        manual = manual + LF.l2n(LF.mac(x[..., t : t + h, l : l + w]))
    assert torch.allclose(LF.rmac(x), manual)


def test_crow_by_hand():
    # Channel 0 fires on 2 of 4 cells, channel 1 on 1 cell.
    x = torch.zeros(1, 2, 2, 2)
    x[0, 0, 0, 0] = 1.0
    x[0, 0, 0, 1] = 1.0
    x[0, 1, 0, 0] = 2.0
    s = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    spatial = (s / math.sqrt(10.0)).sqrt()
    f0 = (x[0, 0] * spatial).sum().item()
    f1 = (x[0, 1] * spatial).sum().item()
    q = [0.5, 0.25]
    w = [math.log(0.75 / q[0]), math.log(0.75 / q[1])]
    out = LF.crow(x)
    assert out[0, 0].item() == pytest.approx(f0 * w[0], rel=1e-4)
    assert out[0, 1].item() == pytest.approx(f1 * w[1], rel=1e-4)


@pytest.mark.parametrize("method", sorted(LF.POOLINGS))
def test_pool_outputs_unit_vectors(method):
    out = LF.pool(torch.rand(3, 16, 6, 9), method, **LF.DEFAULT_PARAMS.get(method, {}))
    assert out.shape == (3, 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-4)


def test_pool_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown pooling"):
        LF.pool(torch.rand(1, 2, 3, 3), "median")


@pytest.mark.parametrize("shape", [(2, 16, 1, 1), (2, 16, 2, 5), (3, 32, 9, 12), (1, 8, 12, 9),
                                   (2, 8, 24, 18), (1, 4, 3, 30)])
def test_rmac_read_off_poolings_equals_region_by_region(shape, monkeypatch):
    """Both ways of taking the regions' maxima (small maps: poolings; big: one by one) agree."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).relu()
    monkeypatch.setattr(LF, "RMAC_POOLED_CELLS", 10**9)
    pooled = LF.rmac(x)
    monkeypatch.setattr(LF, "RMAC_POOLED_CELLS", 0)
    one_by_one = LF.rmac(x)
    assert torch.allclose(pooled, one_by_one, atol=1e-5)
    y = x.clone().requires_grad_(True)
    monkeypatch.setattr(LF, "RMAC_POOLED_CELLS", 10**9)
    LF.rmac(y).sum().backward()  # fine-tuning with R-MAC learns through it
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
