"""soft_argmax decodes peaks differentiably."""
from __future__ import annotations

import torch

from nk_train.models.soft_argmax import soft_argmax


def gaussian_heatmaps(points: torch.Tensor, h: int = 64, w: int = 48, sigma: float = 2.0,
                      peak: float = 1.0) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing='ij')
    d2 = (xs - points[..., 0, None, None]) ** 2 + (ys - points[..., 1, None, None]) ** 2
    return peak * torch.exp(-d2 / (2 * sigma ** 2))


def test_soft_argmax_recovers_subpixel_peaks_with_gradient():
    pts = torch.tensor([[[10.3, 20.7], [40.0, 5.5], [4.0, 58.2]]])  # >= radius from borders
    heat = gaussian_heatmaps(pts).requires_grad_(True)
    got = soft_argmax(heat)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, pts, atol=0.05, rtol=0)
    got.sum().backward()
    assert torch.isfinite(heat.grad).all() and heat.grad.abs().sum() > 0


def test_soft_argmax_is_amplitude_free_and_finite_on_flat_maps():
    pts = torch.tensor([[[12.6, 33.2]]])
    torch.testing.assert_close(soft_argmax(0.2 * gaussian_heatmaps(pts)),
                               soft_argmax(gaussian_heatmaps(pts)))
    assert torch.isfinite(soft_argmax(torch.zeros(1, 1, 64, 48))).all()
