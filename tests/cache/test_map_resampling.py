"""Teacher output -> map grid: UDP alignment, half-pixel output convention, and agreement with
a direct (box filter + grid_sample) implementation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from nk_train.cmgc.teacher_maps import _odd_box, resample_to_map


def _ramp(width: int, height: int, fn) -> torch.Tensor:
    xs = torch.arange(width, dtype=torch.float64)
    return fn(xs).view(1, 1, 1, width).expand(1, 1, height, width).float()


def test_map_pixels_sit_at_udp_positions():
    """A map pixel u must read the teacher at input pixel u (Wt-1)/(mw-1): with an output
    whose value is its own input x coordinate, interior map values equal that position."""
    wt, ht, mw, mh = 97, 41, 25, 11
    full = _ramp(wt, ht, lambda x: x)  # output at input resolution
    half = _ramp(wt // 2 + 1, ht, lambda j: (j + 0.5) * wt / (wt // 2 + 1) - 0.5)  # coarser
    want = torch.arange(mw, dtype=torch.float64) * (wt - 1) / (mw - 1)
    for out in (full, half):
        got = resample_to_map(out, (wt, ht), (mw, mh))[0, 0, mh // 2].double()
        torch.testing.assert_close(got[2:-2], want[2:-2], atol=1e-4, rtol=0)


def test_matches_box_filter_then_grid_sample():
    torch.manual_seed(0)
    out = torch.randn(2, 3, 70, 52)
    wt, ht, mw, mh = 120, 160, 12, 16
    ky, kx = _odd_box(70 / mh), _odd_box(52 / mw)
    ref = F.avg_pool2d(out, (ky, 1), stride=1, padding=(ky // 2, 0), count_include_pad=False)
    ref = F.avg_pool2d(ref, (1, kx), stride=1, padding=(0, kx // 2), count_include_pad=False)
    xt = torch.arange(mw, dtype=torch.float64) * (wt - 1) / (mw - 1)
    yt = torch.arange(mh, dtype=torch.float64) * (ht - 1) / (mh - 1)
    gx, gy = (2 * xt + 1) / wt - 1, (2 * yt + 1) / ht - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing='ij')[::-1], dim=-1).float()
    ref = F.grid_sample(ref, grid.expand(2, mh, mw, 2), mode='bilinear',
                        padding_mode='border', align_corners=False)
    torch.testing.assert_close(resample_to_map(out, (wt, ht), (mw, mh)), ref, atol=1e-5,
                               rtol=1e-5)
