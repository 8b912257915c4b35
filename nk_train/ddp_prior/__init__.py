"""The Diffusion Developmental Prior (``ddp_prior``): a diffusion model over normalised
infant keypoints, trained on labeled poses only, used to pull predictions toward plausible
poses (L_dev and its Teacher B: ``deviation_loss``). It returns coordinates or residuals,
never heatmap labels.

Train with ``tools/train_ddp_prior.py``; load with ``DDPPrior.from_checkpoint``, or on first
use and outside a model's state dict with ``LazyPrior``.
"""
from .denoiser import DenoiserConfig, JointDenoiser, NoiseLevelEstimator
from .normalization import NormalizationConfig, PoseFrame, pose_frame, to_normalized, to_pixels
from .deviation_loss import PriorTeacher, deviation_loss, large_corrections
from .lazy import LazyPrior
from .prior import DENOISE_MODES, DDPPrior
from .schedule import NoiseSchedule, ScheduleConfig
from .training import (CHECKPOINT_FORMAT, AugmentConfig, PoseSet, TrainConfig,
                       build_checkpoint, build_networks, load_training_poses,
                       save_checkpoint, train_prior)
from ..utils import sha256_file

__all__ = [
    'AugmentConfig', 'CHECKPOINT_FORMAT', 'DDPPrior', 'DENOISE_MODES', 'DenoiserConfig',
    'JointDenoiser', 'LazyPrior', 'NoiseLevelEstimator', 'NoiseSchedule', 'NormalizationConfig',
    'PoseFrame', 'PoseSet', 'PriorTeacher', 'ScheduleConfig', 'TrainConfig',
    'build_checkpoint', 'build_networks', 'deviation_loss', 'large_corrections',
    'load_training_poses', 'pose_frame',
    'save_checkpoint', 'sha256_file', 'to_normalized', 'to_pixels', 'train_prior',
]
