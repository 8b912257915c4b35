"""Does the KPS rank real pseudo-labels by correctness? Each term on Teacher A's predictions.

    python benchmarks/kps_pseudo_labels.py --checkpoint CKPT [CKPT ...]
        [--config configs/nk_sapiens/infant/stage1_ssl_full_cpu.py]
        [--cfg-options model.ddp_prior.checkpoint=PATH ...]

The corruptions of benchmarks/kps_auroc.py are synthetic; what the gate meets in training are
the EMA teacher's own mistakes. For every crop of the unlabeled pool (identity view), Teacher A
of each Stage1 checkpoint labels the crop (``tools/gating_report.py``'s loop) and the crop's
OKS against the diagnostic labels (measurement only, never a training input) says whether the
pseudo-label is good (OKS >= 0.5, a hit at COCO's loosest threshold). Each KPS term and
combination then scores the teacher's keypoints (``conf`` = heatmap peaks, as the gate sees
them), and the script prints its AUROC for good vs bad pseudo-labels and its Spearman
correlation with OKS. The ``gate`` row is the config's own gate KPS. Writes
benchmarks/results/kps_pseudo_labels.json.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'tools'))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from gating_report import crop_predictions, load_model, scores  # noqa: E402  (tools/)
from kps_auroc import auroc  # noqa: E402  (benchmarks/, on sys.path as a script)
from results_io import write_results  # noqa: E402

DEFAULT_CONFIG = 'configs/nk_sapiens/infant/stage1_ssl_full_cpu.py'
VARIANTS = dict(conf=dict(conf=1.0), len=dict(len=1.0), rom=dict(rom=1.0),
                prior=dict(prior=1.0), len_rom=dict(len=1.0, rom=1.0),
                len_prior=dict(len=1.0, prior=1.0), conf_len_prior=dict(conf=1.0, len=1.0,
                                                                         prior=1.0))
GOOD_OKS = 0.5


def evaluate(config: str, checkpoint: str, cfg_options: dict, batch_size: int) -> dict:
    """Good/bad counts and, per KPS variant, AUROC (good vs bad) and Spearman rho with OKS."""
    from nk_train.kps import KinematicPlausibilityScore
    from nk_train.skeleton import load_skeleton

    cfg, model = load_model(config, checkpoint, cfg_options)
    sigmas = np.asarray(load_skeleton().sigmas)
    coords, peaks, oks = [], [], []
    for crop in crop_predictions(cfg, model, batch_size=batch_size):
        coords.append(crop['teacher_xy'])
        peaks.append(crop['teacher_peaks'])
        oks.append(scores(crop['image_a'], crop['diagnostic'], sigmas)[1])
    xy, conf, oks = torch.stack(coords), torch.stack(peaks), np.asarray(oks)
    good = oks >= GOOD_OKS
    if good.all() or not good.any():
        raise SystemExit(f'{checkpoint}: all {len(oks)} pseudo-labels are on one side of '
                         f'OKS {GOOD_OKS}; AUROC is undefined')
    gate_kps = model.gate.kps
    prior = dict(checkpoint=cfg.model.ddp_prior.checkpoint)
    if gate_kps.prior_tau is not None:  # the gate's own tau; else the KPS default
        prior['tau'] = gate_kps.prior_tau
    modules = {name: KinematicPlausibilityScore(gate_kps.stats_file, weights=w, prior=prior)
               for name, w in VARIANTS.items()}
    modules['gate'] = gate_kps
    out = dict(checkpoint=checkpoint, crops=len(oks), good=int(good.sum()),
               mean_oks=round(float(oks.mean()), 4), terms={})
    for name, module in modules.items():
        s = module(xy, keypoint_scores=conf).kps.numpy().astype(np.float64)
        out['terms'][name] = dict(auroc=round(auroc(s[good], s[~good]), 4),
                                  spearman=round(float(spearmanr(s, oks)[0]), 4))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', nargs='+', required=True,
                        help='Stage1 checkpoints (their EMA teacher labels the crops)')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='a Stage1 config with a gate')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--out', default='benchmarks/results/kps_pseudo_labels.json')
    args = parser.parse_args(argv)

    runs = [evaluate(args.config, ckpt, args.cfg_options, args.batch_size)
            for ckpt in args.checkpoint]
    for run in runs:
        print(f'\n{run["checkpoint"]}: {run["crops"]} crops, {run["good"]} pseudo-labels with '
              f'OKS >= {GOOD_OKS}, mean OKS {run["mean_oks"]:.3f}')
        print(f'{"KPS":<16}{"AUROC":>8}{"Spearman":>10}')
        for name, m in run['terms'].items():
            print(f'{name:<16}{m["auroc"]:8.3f}{m["spearman"]:10.3f}')
    write_results(args.out, dict(
        config=args.config, cfg_options=dict(args.cfg_options), good_oks=GOOD_OKS,
        variants=VARIANTS, runs=runs,
        environment=dict(python=platform.python_version(), torch=torch.__version__)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
