"""STAND-IN geometric teacher: seeded random networks for CPU demos, tests and benchmarks only.

Its maps mean nothing, but they come in the real teacher's format, so every code path of the
real one runs on this machine (Sapiens' depth and normal models cannot be downloaded here):

* depth at the input resolution, *relative* like Sapiens' (each image's foreground min-max
  normalised to [0, 1], background -1); the foreground is a centred ellipse over 0.8 of the
  crop's width and height (pose crops are centred on the person's box, so most keypoints fall
  inside it and the CMGC terms have limbs to count);
* normals at half the input resolution, not unit length.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpose.registry import MODELS

BACKGROUND_DEPTH = -1.0  # Sapiens' depth targets mark the background with -1


@MODELS.register_module()
class StandInGeometricNet(nn.Module):
    """STAND-IN network (random weights unless loaded): a few convolutions, the first two
    strided, so its output is at a quarter of the input resolution. Registered so the
    ``kind='module'`` loader can be exercised without a real checkpoint."""

    def __init__(self, out_channels: int, width: int, num_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(num_layers):
            stride = 2 if i < 2 else 1
            layers += [nn.Conv2d(c_in, width, 3, stride=stride, padding=1), nn.GELU()]
            c_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def relative_depth(raw: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Sapiens' depth convention: foreground min-max to [0, 1] per image, background -1."""
    fg = foreground > 0.5
    big = torch.finfo(raw.dtype).max
    lo = torch.where(fg, raw, torch.full_like(raw, big)).flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = torch.where(fg, raw, torch.full_like(raw, -big)).flatten(1).amax(1).view(-1, 1, 1, 1)
    rel = (raw - lo) / (hi - lo).clamp_min(1e-6)
    return torch.where(fg, rel, torch.full_like(raw, BACKGROUND_DEPTH))


def centred_ellipse(like: torch.Tensor, extent: float = 0.8) -> torch.Tensor:
    """B x 1 x h x w: 1 inside the ellipse centred in the image over ``extent`` of its size."""
    h, w = like.shape[-2:]
    ys = torch.linspace(-1.0, 1.0, h, device=like.device).view(-1, 1)
    xs = torch.linspace(-1.0, 1.0, w, device=like.device).view(1, -1)
    inside = ((xs / extent) ** 2 + (ys / extent) ** 2 <= 1.0).to(like.dtype)
    return inside.expand(like.shape[0], 1, h, w)


class StandInDepth(nn.Module):
    """Relative depth with a background at the input resolution (module docstring)."""

    def __init__(self, net: StandInGeometricNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = F.interpolate(self.net(x), size=x.shape[-2:], mode='bilinear', align_corners=False)
        return relative_depth(F.softplus(raw), centred_ellipse(raw))


class StandInNormal(nn.Module):
    """Non-unit normals at half the input resolution (module docstring)."""

    def __init__(self, net: StandInGeometricNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = (x.shape[-2] // 2, x.shape[-1] // 2)
        return F.interpolate(self.net(x), size=half, mode='bilinear', align_corners=False)


def stand_in_networks(seed: int = 0, width: int = 16, num_layers: int = 3
                      ) -> tuple[nn.Module, nn.Module]:
    """The stand-in depth and normal networks, seeded without touching the global RNG."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(seed))
        depth = StandInDepth(StandInGeometricNet(1, width, num_layers))
        normal = StandInNormal(StandInGeometricNet(3, width, num_layers))
    finally:
        torch.random.set_rng_state(state)
    return depth, normal
