"""Fixtures for the ddp_prior tests: real SyRIP poses and one tiny prior trained in seconds."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nk_train.ddp_prior import (AugmentConfig, DDPPrior, DenoiserConfig, TrainConfig,
                                build_checkpoint, load_training_poses, save_checkpoint,
                                sha256_file, train_prior)
from nk_train.skeleton import load_skeleton


def tiny_config(steps: int = 40, seed: int = 0) -> TrainConfig:
    """Small enough to train in about a second on 2 CPU cores."""
    return TrainConfig(steps=steps, batch_size=64, lr=2e-3, warmup_steps=5, seed=seed,
                       denoiser=DenoiserConfig(width=64, depth=2),
                       augment=AugmentConfig())


@pytest.fixture(scope='session')
def make_config():
    """``tiny_config`` as a fixture (test modules do not import conftest)."""
    return tiny_config


@pytest.fixture(scope='session')
def skeleton():
    return load_skeleton()


@pytest.fixture(scope='session')
def train_ann(syrip_root: Path) -> Path:
    return syrip_root / 'annotations' / 'train_labeled.json'


@pytest.fixture(scope='session')
def train_poses(train_ann: Path, skeleton):
    return load_training_poses(train_ann, skeleton.num_keypoints)


@pytest.fixture(scope='session')
def val_poses(syrip_root: Path, skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """First 16 poses of val_test100: (coords (16, K, 2), visible (16, K))."""
    poses = load_training_poses(syrip_root / 'annotations' / 'val_test100.json',
                                skeleton.num_keypoints)
    return poses.coords[:16].clone(), poses.visible[:16].clone()


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory, train_poses, train_ann, skeleton) -> tuple[dict, Path]:
    cfg = tiny_config()
    nets, losses = train_prior(train_poses, skeleton.flip_indices, cfg)
    ckpt = build_checkpoint(nets, cfg, train_poses, skeleton.keypoint_names,
                            skeleton.flip_indices, losses, sha256_file(train_ann))
    path = save_checkpoint(ckpt, tmp_path_factory.mktemp('ddp_prior') / 'tiny.pth')
    return ckpt, path


@pytest.fixture(scope='session')
def prior(tiny_checkpoint) -> DDPPrior:
    return DDPPrior.from_checkpoint(tiny_checkpoint[1])
