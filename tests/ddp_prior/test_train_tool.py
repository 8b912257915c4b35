"""tools/train_ddp_prior.py end to end on the real labeled file (a few steps)."""
from __future__ import annotations

import hashlib

import torch

from script_loader import load_script

from nk_train.ddp_prior import DDPPrior


def test_cli_writes_weights_only_checkpoint(repo_root, tmp_path, skeleton):
    tool = load_script('tools/train_ddp_prior.py')
    ann = 'data/syrip/annotations/train_labeled.json'
    out = tool.main(['--ann', ann, '--out', str(tmp_path / 'p.pth'), '--steps', '5',
                     '--batch-size', '16', '--width', '32', '--depth', '1', '--no-progress'])
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    expected_sha = hashlib.sha256((repo_root / ann).read_bytes()).hexdigest()
    assert ckpt['training']['annotation_sha256'] == expected_sha
    # only the train part of the validation split trains the prior (160 of 200 images)
    assert ckpt['training']['annotation_file'].startswith(
        f'{ann} (train part of stats/splits/syrip_labeled.json')
    assert ckpt['training']['steps'] == 5 and ckpt['training']['num_poses'] == 160
    assert ckpt['keypoint_names'] == list(skeleton.keypoint_names)
    assert ckpt['flip_indices'] == list(skeleton.flip_indices)
    assert ckpt['denoiser']['width'] == 32 and ckpt['schedule']['kind'] == 'cosine'
    assert ckpt['normalization']['method'] == 'visible_mean_rms'
    prior = DDPPrior.from_checkpoint(out)
    assert prior.num_keypoints == skeleton.num_keypoints
