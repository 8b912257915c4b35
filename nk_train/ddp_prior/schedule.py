"""Variance-preserving noise schedules (cosine or linear) with a configurable step count.

``x_t = sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * eps`` for integer ``t`` in ``1..T``;
``abar_0 = 1`` is the clean pose. Dividing by ``sqrt(abar_t)`` gives ``x_0 + sigma_t * eps``
with ``sigma_t = sqrt((1 - abar_t) / abar_t)``. The prior works in that second form (a pose
plus Gaussian coordinate noise of std ``sigma_t`` in pose-frame units), which is what a noisy
prediction looks like; the network is fed ``sqrt(abar_t)`` times it, a unit-scale input.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class ScheduleConfig:
    kind: str = 'cosine'
    num_steps: int = 100

    def __post_init__(self) -> None:
        if self.kind not in ('cosine', 'linear'):
            raise ValueError(f"schedule kind must be 'cosine' or 'linear', got {self.kind!r}")
        if self.num_steps < 2:
            raise ValueError(f'num_steps must be >= 2, got {self.num_steps}')

    def to_dict(self) -> dict:
        return asdict(self)


def _alpha_bar(cfg: ScheduleConfig) -> torch.Tensor:
    """abar_t for t = 0..T in float64 (abar_0 = 1)."""
    T = cfg.num_steps
    if cfg.kind == 'cosine':  # Nichol & Dhariwal 2021, betas clipped at 0.999
        s = 0.008
        f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(t) / f(t - 1), 0.999) for t in range(1, T + 1)]
        betas = torch.tensor(betas, dtype=torch.float64)
    else:  # DDPM's 1e-4..0.02 over 1000 steps, rescaled so T steps reach the same end point
        betas = torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=torch.float64)
        betas = betas.clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


class NoiseSchedule:
    """abar table plus the few operations the trainer and the sampler need."""

    def __init__(self, cfg: ScheduleConfig) -> None:
        self.cfg = cfg
        self.num_steps = cfg.num_steps
        ab = _alpha_bar(cfg)
        self._alpha_bar = ab.float()
        self._sigma = ((1 - ab) / ab).sqrt().float()  # increasing in t, sigma_0 = 0

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        return self._alpha_bar.to(t.device)[t]

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self._sigma.to(t.device)[t]

    def timesteps_for_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """For each noise level (B,), the step in 1..T whose sigma_t is closest (long, (B,))."""
        if not bool((sigma > 0).all()):
            raise ValueError(f'noise levels must be > 0, got min {float(sigma.min())}')
        table = self._sigma[1:].to(sigma.device)
        return (sigma[:, None] - table[None, :]).abs().argmin(dim=1) + 1

    def v_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The v that ``x0_from_v`` maps back to ``x0`` (the training target)."""
        ab = self.alpha_bar(t).view(-1, *([1] * (x_t.ndim - 1)))
        return (ab.sqrt() * x_t - x0) / (1 - ab).sqrt()

    def x0_from_v(self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ab = self.alpha_bar(t).view(-1, *([1] * (x_t.ndim - 1)))
        return ab.sqrt() * x_t - (1 - ab).sqrt() * v
