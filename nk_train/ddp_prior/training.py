"""Training the ddp_prior on labeled COCO keypoints, and writing its checkpoint.

Only labeled keypoints are used. A joint with COCO visibility 0 (not labeled) is masked: its
coordinates never enter the model (mask channel) and it is never a loss target. Poses are
augmented in pixel space before normalisation, so the model sees the same frame it gets at
inference: left/right flip (with the skeleton's flip permutation), rotation, a small
anisotropic stretch (an isotropic scale would be undone by the normalisation) and random
dropping of a few visible joints, so the prior works with the partial masks it meets when
low-confidence predictions are hidden from it.

Rotation defaults to the full circle: infants lie in every orientation relative to the camera.
Measured with ``benchmarks/ddp_prior_denoise.py`` (3000 steps, x0 / auto): +-30 degrees moved
clean val poses by 2.29% of the bbox size at a 35.2% error reduction for 10% noise;
+-180 degrees moved them by 1.73% at 33.8%.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..coco_keypoints import read_coco_keypoints
from ..utils import tensors_digest
from .denoiser import DenoiserConfig, JointDenoiser, NoiseLevelEstimator
from .normalization import NormalizationConfig, pose_frame, to_normalized
from .schedule import NoiseSchedule, ScheduleConfig

# /2: the checkpoint records the sha256 of its weights (``weights_sha256``), checked at load.
CHECKPOINT_FORMAT = 'nk_train.ddp_prior/2'


@dataclass
class PoseSet:
    """Labeled poses in pixels: coords (N, K, 2), visible (N, K) bool, and where they came from."""

    coords: torch.Tensor
    visible: torch.Tensor
    annotation_ids: list[int]
    excluded_annotation_ids: list[int] = field(default_factory=list)
    source: str = ''


def load_training_poses(path: str | Path, num_keypoints: int,
                        min_visible: int = NormalizationConfig.min_visible) -> PoseSet:
    """The poses of a COCO keypoint file that the prior can train on.

    Read by ``nk_train.coco_keypoints.read_coco_keypoints`` (malformed input raises an error
    naming the file and annotation id). Crowd annotations and poses with fewer than
    ``min_visible`` labeled joints cannot define a pose frame; they are listed in
    ``excluded_annotation_ids`` (callers report them) and an empty result is an error.
    """
    path = Path(path)
    if 'diagnostic' in path.name:
        raise ValueError(f'{path}: diagnostic keypoint files are for measurement only, '
                         'never a training input')
    poses = read_coco_keypoints(path, num_keypoints, min_labeled=min_visible)
    return PoseSet(coords=torch.from_numpy(poses.coords).float(),
                   visible=torch.from_numpy(poses.visibility > 0),
                   annotation_ids=list(poses.ann_ids),
                   excluded_annotation_ids=list(poses.left_out), source=str(path))


@dataclass
class AugmentConfig:
    flip_prob: float = 0.5
    rot_deg: float = 180.0    # uniform in [-rot_deg, rot_deg]
    stretch: float = 0.1      # per-axis log-scale uniform in [-stretch, stretch]
    drop_prob: float = 0.1    # each visible joint hidden with this probability


def augment(coords: torch.Tensor, visible: torch.Tensor, flip_indices: torch.Tensor,
            cfg: AugmentConfig, generator: torch.Generator,
            min_visible: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip / rotation / stretch / joint dropping of a (B, K, 2) pixel batch."""
    B = coords.shape[0]
    g = dict(generator=generator)
    flip = torch.rand(B, **g) < cfg.flip_prob
    coords = torch.where(flip[:, None, None], coords[:, flip_indices] * coords.new_tensor(
        [-1.0, 1.0]), coords)
    visible = torch.where(flip[:, None], visible[:, flip_indices], visible)

    angle = (torch.rand(B, **g) * 2 - 1) * math.radians(cfg.rot_deg)
    log_s = (torch.rand(B, 2, **g) * 2 - 1) * cfg.stretch
    c, s = angle.cos(), angle.sin()
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (B, 2, 2)
    lin = rot * log_s.exp()[:, None, :]  # stretch along image axes, then rotate
    coords = torch.einsum('bij,bkj->bki', lin, coords)

    drop = (torch.rand(visible.shape, **g) < cfg.drop_prob) & visible
    kept = visible & ~drop
    enough = kept.sum(1) >= min_visible
    visible = torch.where(enough[:, None], kept, visible)
    return coords, visible


@dataclass
class TrainConfig:
    steps: int = 6000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    ema_decay: float = 0.995
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)


@dataclass
class NoisyBatch:
    """A noised training batch, in the frame of the NOISY pose (as at inference)."""

    y: torch.Tensor        # noisy pose, normalised by its own frame
    x0: torch.Tensor       # the clean pose in that same frame (the target)
    visible: torch.Tensor
    t: torch.Tensor        # diffusion step of the noise, (B,)
    sigma: torch.Tensor    # its noise level in clean pose-frame units, (B,)


def make_noisy_batch(coords: torch.Tensor, visible: torch.Tensor, schedule: NoiseSchedule,
                     norm: NormalizationConfig, generator: torch.Generator) -> NoisyBatch:
    """Add Gaussian noise of a random step to pixel poses and normalise the result.

    Noise is scaled by the clean pose's frame (so ``sigma`` means the same for every pose),
    but the network input and target use the frame of the noisy pose: at inference only the
    noisy pose is known, so this is the frame the network will actually see.
    """
    B = coords.shape[0]
    clean = pose_frame(coords, visible, norm)
    t = torch.randint(1, schedule.num_steps + 1, (B,), generator=generator)
    sigma = schedule.sigma(t)
    noise = torch.randn(coords.shape, generator=generator)
    noisy = coords + (sigma * clean.scale)[:, None, None] * noise
    frame = pose_frame(noisy, visible, norm)
    return NoisyBatch(y=to_normalized(noisy, visible, frame),
                      x0=to_normalized(coords, visible, frame), visible=visible, t=t,
                      sigma=sigma)


def _masked_mean(err: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Mean over visible entries; invisible ones are dropped (not multiplied: NaN * 0 = NaN)."""
    kept = torch.where(visible, err, torch.zeros_like(err))
    return kept.sum() / visible.sum().clamp(min=1)


def diffusion_loss(denoiser: JointDenoiser, schedule: NoiseSchedule,
                   batch: NoisyBatch) -> torch.Tensor:
    """v-prediction MSE averaged over visible joints only (invisible joints are no target).

    Values at invisible joints are zeroed before any arithmetic, so not even a NaN there can
    reach the loss or its gradient.
    """
    vis = batch.visible[..., None]
    y = torch.where(vis, batch.y, torch.zeros_like(batch.y))
    x0 = torch.where(vis, batch.x0, torch.zeros_like(batch.x0))
    ab = schedule.alpha_bar(batch.t)[:, None, None]
    x_t = ab.sqrt() * y
    v_hat = denoiser(x_t, batch.visible, batch.t.float() / schedule.num_steps)
    err = (v_hat - schedule.v_from_x0(x_t, batch.t, x0)).pow(2).sum(-1)  # (B, K)
    return _masked_mean(err, batch.visible)


def noise_level_loss(estimator: NoiseLevelEstimator, batch: NoisyBatch,
                     max_noise_level: float) -> torch.Tensor:
    """Squared error of the predicted log noise level (targets clipped at max_noise_level)."""
    target = batch.sigma.clamp(max=max_noise_level).log()
    return (estimator(batch.y, batch.visible) - target).pow(2).mean()


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * p))


def build_networks(cfg: DenoiserConfig) -> nn.ModuleDict:
    """The trained parts of a prior; ``DDPPrior`` holds them under the same names."""
    return nn.ModuleDict({'denoiser': JointDenoiser(cfg),
                          'noise_estimator': NoiseLevelEstimator(cfg)})


def train_prior(poses: PoseSet, flip_indices: list[int] | tuple[int, ...], cfg: TrainConfig,
                progress: bool = False) -> tuple[nn.ModuleDict, list[float]]:
    """Train denoiser + noise-level estimator; return their EMA copy and per-step losses."""
    K = poses.coords.shape[1]
    if cfg.denoiser.num_keypoints != K:
        raise ValueError(f'denoiser num_keypoints={cfg.denoiser.num_keypoints} but '
                         f'{poses.source} has K={K}')
    if sorted(flip_indices) != list(range(K)):
        raise ValueError(f'flip_indices must be a permutation of 0..{K - 1}, got {flip_indices}')
    torch.manual_seed(cfg.seed)  # parameter init
    gen = torch.Generator().manual_seed(cfg.seed)  # batches, augmentation, noise
    nets = build_networks(cfg.denoiser)
    ema = copy.deepcopy(nets).requires_grad_(False)
    schedule = NoiseSchedule(cfg.schedule)
    opt = torch.optim.AdamW(nets.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    flip = torch.tensor(list(flip_indices))
    N = poses.coords.shape[0]
    losses: list[float] = []
    steps = range(cfg.steps)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc='ddp_prior', unit='step')
    nets.train()
    for step in steps:
        idx = torch.randint(N, (cfg.batch_size,), generator=gen)
        coords, visible = augment(poses.coords[idx], poses.visible[idx], flip, cfg.augment, gen,
                                  cfg.normalization.min_visible)
        batch = make_noisy_batch(coords, visible, schedule, cfg.normalization, gen)
        loss = diffusion_loss(nets['denoiser'], schedule, batch) + noise_level_loss(
            nets['noise_estimator'], batch, cfg.denoiser.max_noise_level)
        for group in opt.param_groups:
            group['lr'] = _lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))  # short runs: EMA tracks early
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), nets.parameters()):
                pe.lerp_(pm, 1 - decay)
        losses.append(loss.item())
        if progress and step % 50 == 0:
            steps.set_postfix(loss=f'{sum(losses[-50:]) / len(losses[-50:]):.4f}')
    return ema.eval(), losses


def build_checkpoint(model: nn.Module, cfg: TrainConfig, poses: PoseSet,
                     keypoint_names: list[str] | tuple[str, ...],
                     flip_indices: list[int] | tuple[int, ...], losses: list[float],
                     annotation_sha256: str) -> dict:
    """Everything inference needs, as tensors and plain containers (``weights_only`` safe)."""
    tail = losses[-100:] if losses else [float('nan')]
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {
        'format': CHECKPOINT_FORMAT,
        'weights_sha256': tensors_digest(state.items()),
        'denoiser': cfg.denoiser.to_dict(),
        'schedule': cfg.schedule.to_dict(),
        'normalization': cfg.normalization.to_dict(),
        'keypoint_names': list(keypoint_names),
        'flip_indices': [int(i) for i in flip_indices],
        'training': {
            'annotation_file': poses.source,
            'annotation_sha256': annotation_sha256,
            'num_poses': int(poses.coords.shape[0]),
            'annotation_ids': [int(i) for i in poses.annotation_ids],
            'excluded_annotation_ids': [int(i) for i in poses.excluded_annotation_ids],
            'steps': cfg.steps, 'batch_size': cfg.batch_size, 'lr': cfg.lr,
            'weight_decay': cfg.weight_decay, 'warmup_steps': cfg.warmup_steps,
            'ema_decay': cfg.ema_decay, 'seed': cfg.seed, 'augment': asdict(cfg.augment),
            'final_loss_mean100': float(sum(tail) / len(tail)),
        },
        'state_dict': state,
    }


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path
