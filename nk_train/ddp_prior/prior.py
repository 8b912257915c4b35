"""Inference with a trained ddp_prior: corrected coordinates or residuals, never labels.

``DDPPrior`` is a frozen module. It returns coordinates in the caller's pixel frame
(``denoise``) or ``denoised - input`` (``residual``), both detached float32 tensors shaped like
the input, so they can only serve as a structural regulariser (L_dev) or a soft target.

The input is treated as a clean pose plus Gaussian coordinate noise of std ``noise_level``
(pose-frame units: a fraction of the pose's RMS coordinate spread, see ``normalization``), i.e.
as a point on the diffusion chain at the step with that noise level. ``noise_level='auto'``
lets the trained noise-level estimator pick it per pose. Two ways to denoise:

* ``'x0'``: one network call predicts the clean pose (deterministic, no sampling);
* ``'sdedit'``: fresh noise of that level is added (partial noising), then ``num_steps``
  deterministic DDIM steps return to a clean pose; ``num_samples`` runs are averaged. The
  noise comes from ``generator`` or ``seed`` and is drawn on the CPU, so results do not depend
  on the device.

Every network call normalises the current pose by its own frame, as in training.

Defaults (``'x0'``, ``'auto'``) are the best measured by ``benchmarks/ddp_prior_denoise.py`` on
val_test100 (6000-step prior; errors in % of the bbox size): x0/auto moved clean poses by
1.64 and cut the error at 10% noise from 12.48 to 8.03 (-35.6%); a fixed level trades one for
the other (0.1: 1.44 and -16.5%; 0.3: 3.90 and -37.0%); sdedit/auto with 4 steps moved clean
poses by 3.00 (1.81 averaging 4 runs) for only -11.1% (-15.3%), at 4-15x the cost.

Joints the caller marks invisible, and poses with too few visible joints to define a pose
frame, come back unchanged (residual 0): the prior has no opinion about them.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .denoiser import DenoiserConfig
from .normalization import (NormalizationConfig, check_pose_batch, pose_frame, to_normalized,
                            to_pixels)
from .schedule import NoiseSchedule, ScheduleConfig
from ..utils import tensors_digest
from .training import CHECKPOINT_FORMAT, build_networks

DENOISE_MODES = ('x0', 'sdedit')


class DDPPrior(nn.Module):
    """Frozen diffusion developmental prior over (B, K, 2) pixel keypoints."""

    default_mode: str = 'x0'
    default_noise_level: float | str = 'auto'
    default_sdedit_steps: int = 4

    def __init__(self, networks: nn.ModuleDict, denoiser_cfg: DenoiserConfig,
                 schedule: NoiseSchedule, normalization: NormalizationConfig,
                 keypoint_names: list[str], meta: dict | None = None) -> None:
        super().__init__()
        self.denoiser = networks['denoiser']
        self.noise_estimator = networks['noise_estimator']
        self.denoiser_cfg = denoiser_cfg
        self.schedule = schedule
        self.normalization = normalization
        self.keypoint_names = list(keypoint_names)
        self.meta = dict(meta or {})
        self.requires_grad_(False)
        super().train(False)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = 'cpu') -> 'DDPPrior':
        path = Path(path)
        retrain = 'retrain it with tools/train_ddp_prior.py --out PATH'
        if not path.is_file():
            raise FileNotFoundError(f'ddp_prior checkpoint not found: {path} ({retrain})')
        try:
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # noqa: BLE001 - truncated, corrupted or foreign pickles
            raise ValueError(f'{path}: cannot read this ddp_prior checkpoint '
                             f'({type(err).__name__}: {str(err).splitlines()[0][:200]}); it is '
                             f'corrupted or not a ddp_prior file: {retrain}') from None
        if not isinstance(ckpt, dict) or ckpt.get('format') != CHECKPOINT_FORMAT:
            got = ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ValueError(f'{path}: not a ddp_prior checkpoint of this version (format '
                             f'{got!r}, expected {CHECKPOINT_FORMAT!r}): {retrain}')
        digest = tensors_digest(ckpt['state_dict'].items())
        if digest != ckpt.get('weights_sha256'):
            raise ValueError(f'{path}: the weights do not match the sha256 recorded when the '
                             f'file was written (corrupted): {retrain}')
        return cls.from_checkpoint_dict(ckpt, source=str(path)).to(device)

    @classmethod
    def from_checkpoint_dict(cls, ckpt: dict, source: str = '<memory>') -> 'DDPPrior':
        """Build from the dict ``training.build_checkpoint`` returns (what the file holds)."""
        denoiser_cfg = DenoiserConfig(**ckpt['denoiser'])
        networks = build_networks(denoiser_cfg)
        networks.load_state_dict(ckpt['state_dict'])
        return cls(networks, denoiser_cfg, NoiseSchedule(ScheduleConfig(**ckpt['schedule'])),
                   NormalizationConfig(**ckpt['normalization']), ckpt['keypoint_names'],
                   meta={'checkpoint': source, 'training': ckpt.get('training', {}),
                         'flip_indices': ckpt.get('flip_indices')})

    def train(self, mode: bool = True) -> 'DDPPrior':
        """Stay in eval mode whatever a parent module asks (the prior is frozen)."""
        return super().train(False)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def denoise(self, coords: torch.Tensor, visibility: torch.Tensor, *,
                mode: str | None = None, noise_level: float | str | None = None,
                num_steps: int | None = None, num_samples: int = 1,
                generator: torch.Generator | None = None, seed: int = 0) -> torch.Tensor:
        """Corrected (B, K, 2) coordinates in the input's pixel frame (float32, detached).

        ``visibility`` (B, K): True / > 0 marks joints the prior may use and move.
        ``mode``: ``'x0'`` or ``'sdedit'`` (default ``default_mode``).
        ``noise_level``: assumed input noise in pose-frame units, or ``'auto'`` (per pose).
        ``num_steps`` / ``num_samples``: DDIM steps and averaged runs of ``'sdedit'``.
        ``generator`` (a CPU generator) or ``seed`` fixes the noise of ``'sdedit'``.
        """
        _, out, _ = self._run(coords, visibility, mode, noise_level, num_steps, num_samples,
                              generator, seed)
        return out

    def residual(self, coords: torch.Tensor, visibility: torch.Tensor,
                 **kwargs) -> torch.Tensor:
        """``denoise(...) - coords`` as a soft guidance signal; exactly 0 where the prior has
        no opinion (invisible joints, poses without a frame), even if the input there is NaN.
        Takes the same keyword arguments as ``denoise``."""
        x, out, used = self._run(coords, visibility, **kwargs)
        return torch.where(used[..., None], out - x, torch.zeros_like(x))

    def correction_size(self, coords: torch.Tensor, visibility: torch.Tensor,
                        **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Per pose (B,): the largest correction the prior makes to a visible joint, in
        pose-frame units (the pose's RMS joint spread, so it does not depend on the pose's
        size), and (B,) whether the prior had an opinion (enough joints for a frame; 0 where
        not). Real poses are barely moved; a displaced or swapped joint is pulled back, so
        this is a plausibility signal (KPS ``prior`` term). Takes ``denoise``'s keywords."""
        x, out, used = self._run(coords, visibility, **kwargs)
        frame = pose_frame(torch.where(used[..., None], x, torch.zeros_like(x)), used,
                           self.normalization)
        dist = torch.where(used, (out - x).norm(dim=-1), torch.zeros_like(x[..., 0]))
        return (dist / frame.scale[:, None]).amax(-1), frame.valid

    def _estimate(self, x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        lo = float(self.schedule.sigma(torch.tensor(1)))
        return self.noise_estimator(x, visible).exp().clamp(lo,
                                                            self.denoiser_cfg.max_noise_level)

    def _follow(self, device: torch.device) -> None:
        if next(self.denoiser.parameters()).device != device:
            self.to(device)

    @torch.no_grad()
    def _run(self, coords: torch.Tensor, visibility: torch.Tensor, mode: str | None = None,
             noise_level: float | str | None = None, num_steps: int | None = None,
             num_samples: int = 1, generator: torch.Generator | None = None,
             seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(float32 input, corrected coords, bool mask of the joints the prior moved)."""
        mode = mode or self.default_mode
        if mode not in DENOISE_MODES:
            raise ValueError(f'mode must be one of {DENOISE_MODES}, got {mode!r}')
        level = self.default_noise_level if noise_level is None else noise_level
        with torch.autocast(device_type=coords.device.type, enabled=False):
            coords = coords.detach().float()
            visible = check_pose_batch(coords, visibility.detach(), self.num_keypoints)
            self._follow(coords.device)
            frame = pose_frame(coords, visible, self.normalization)
            visible = visible & frame.valid[:, None]
            if level == 'auto':
                sigma = self._estimate(to_normalized(coords, visible, frame), visible)
            elif isinstance(level, (int, float)) and not isinstance(level, bool):
                sigma = torch.full((coords.shape[0],), float(level), device=coords.device)
            else:
                raise ValueError(f"noise_level must be a number or 'auto', got {level!r}")
            t = self.schedule.timesteps_for_sigma(sigma)
            if mode == 'x0':
                out = self._predict_x0(coords, visible, t)
            else:
                out = self._sdedit(coords, visible, frame.scale, t,
                                   num_steps or self.default_sdedit_steps, num_samples,
                                   generator, seed)
            return coords, torch.where(visible[..., None], out, coords), visible

    def _predict_x0(self, y: torch.Tensor, visible: torch.Tensor,
                    t: torch.Tensor) -> torch.Tensor:
        """One network call: clean-pose estimate (pixels) for pixel poses ``y`` at steps ``t``."""
        frame = pose_frame(y, visible, self.normalization)
        ab = self.schedule.alpha_bar(t)[:, None, None]
        x_t = ab.sqrt() * to_normalized(y, visible, frame)
        v = self.denoiser(x_t, visible, t.float() / self.schedule.num_steps)
        return to_pixels(self.schedule.x0_from_v(x_t, t, v), frame)

    def _sdedit(self, coords: torch.Tensor, visible: torch.Tensor, scale: torch.Tensor,
                t_start: torch.Tensor, num_steps: int, num_samples: int,
                generator: torch.Generator | None, seed: int) -> torch.Tensor:
        """Partial noising to ``t_start`` then DDIM back to 0, in pixels.

        DDIM (eta = 0) in the ``y = x0 + sigma * eps`` form: ``y' = x0 + sigma'/sigma (y - x0)``.
        """
        if num_samples < 1 or num_steps < 1:
            raise ValueError(f'num_samples and num_steps must be >= 1, got '
                             f'{num_samples}, {num_steps}')
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        elif generator.device.type != 'cpu':
            raise ValueError('generator must be a CPU torch.Generator (noise is drawn on CPU '
                             'so results do not depend on the device)')
        frac = torch.linspace(1, 0, num_steps + 1, device=coords.device)
        ts = (t_start[:, None].float() * frac[None, :]).round().long()  # (B, num_steps + 1)
        unit = scale[:, None, None]
        total = torch.zeros_like(coords)
        for _ in range(num_samples):
            noise = torch.randn(coords.shape, generator=generator).to(coords.device)
            y = coords + (self.schedule.sigma(t_start)[:, None, None] * unit) * noise
            for i in range(num_steps):
                cur, nxt = ts[:, i], ts[:, i + 1]
                x0 = self._predict_x0(y, visible, cur.clamp(min=1))
                ratio = (self.schedule.sigma(nxt) / self.schedule.sigma(cur.clamp(min=1)))
                y_next = x0 + ratio[:, None, None] * (y - x0)
                y = torch.where((cur > 0)[:, None, None], y_next, y)
            total += y
        return total / num_samples
