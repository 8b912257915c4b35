"""How good are the pseudo-labels the Hybrid gate picks? A diagnostic, never a training input.

    python tools/gating_report.py CONFIG --checkpoint CKPT [--indices I ...] [--json OUT]
        [--cfg-options model.ddp_prior.checkpoint=PATH ...]

On the identity view (k = 0) of the unlabeled pool, Teacher A (the checkpoint's EMA teacher)
labels each crop and the config's gate accepts or rejects it; Teacher B is the ddp_prior's
denoising of the student's keypoints on the same crop. Each group is scored against the
pool's diagnostic labels (``train_unlabeled_diagnostic_keypoints.json``, matched by annotation
id): PCK@0.1 (a keypoint is correct within 0.1 x the longer bbox side; labeled keypoints only)
and COCO OKS with the skeleton's sigmas and area = bbox width x height (the file's ``area``
field uses another definition, see data/README.md). The gate is useful when Teacher A's
accepted samples score higher than its rejected ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402

DIAGNOSTIC_ANN = 'syrip/annotations/train_unlabeled_diagnostic_keypoints.json'


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='a Stage1 config with a gate and lambda_dev > 0')
    p.add_argument('--checkpoint', required=True, help='Stage1 checkpoint (student + teacher)')
    p.add_argument('--indices', type=int, nargs='+', help='unlabeled instance positions')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--json', help='also write the numbers here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='config overrides, e.g. model.ddp_prior.checkpoint=PATH')
    return p.parse_args(argv)


def to_image(coords: np.ndarray, affine: np.ndarray, input_size, heatmap_size) -> np.ndarray:
    """Heatmap-pixel keypoints (K x 2) -> original image pixels (inverse of the UDP crop)."""
    from nk_train.crop_geometry import rescale_affine
    a = np.vstack([rescale_affine(affine, input_size, heatmap_size), [0.0, 0.0, 1.0]])
    pts = np.concatenate([coords, np.ones((len(coords), 1))], axis=1)
    return (pts @ np.linalg.inv(a).T)[:, :2]


def scores(pred: np.ndarray, ann: dict, sigmas: np.ndarray) -> tuple[float, float]:
    """(PCK@0.1 of the longer bbox side, OKS) of one pose against a diagnostic annotation."""
    gt = np.asarray(ann['keypoints'], dtype=np.float64).reshape(-1, 3)
    vis = gt[:, 2] > 0
    if not vis.any():
        raise ValueError(f'diagnostic annotation {ann["id"]} has no labeled keypoint')
    x, y, w, h = ann['bbox']
    d = np.linalg.norm(pred - gt[:, :2], axis=1)
    pck = float((d[vis] <= 0.1 * max(w, h)).mean())
    var = (2 * sigmas) ** 2
    oks = float(np.exp(-d[vis] ** 2 / (2 * max(w * h, 1.0) * var[vis])).mean())
    return pck, oks


def load_model(config: str, checkpoint: str, cfg_options: dict | None = None):
    """``(cfg, model)``: the Stage1 model of ``config`` with ``checkpoint`` loaded, eval mode.
    The config needs a gate and lambda_dev > 0 (Teacher B)."""
    import nk_train  # noqa: F401  (registers everything)
    from mmpose.registry import MODELS

    init_default_scope('mmpose')
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options or {})
    if cfg.model.get('gate') is None or cfg.model.semi_train_cfg.get('lambda_dev', 0) <= 0:
        raise SystemExit(f'{config}: needs a gate and lambda_dev > 0 (e.g. the full config)')
    cfg.model.init_from = None
    model = MODELS.build(cfg.model.to_dict())
    load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    return cfg, model.eval()


def crop_predictions(cfg, model, indices: list[int] | None = None,
                     batch_size: int = 8) -> Iterator[dict]:
    """Per crop of the unlabeled pool's identity view (k = 0): Teacher A's keypoints
    (``teacher_xy``, heatmap pixels) and heatmap peaks, the gate's decision (``accept``) and
    its inputs (``conf``, ``kps``), and Teacher A, Teacher B and the student in original image
    pixels (``image_a/b/s``) with the crop's diagnostic annotation (``diagnostic``), image
    (``img_path``) and crop affine (``affine``, image -> crop)."""
    from nk_train.data.seeded_views import SeededViewDataset
    from nk_train.kps import heatmap_peaks

    unlabeled = cfg.train_dataloader.dataset.datasets[1].dataset
    input_size = tuple(cfg.codec.input_size)
    heatmap_size = tuple(cfg.codec.heatmap_size)
    pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='SeededTopdownAffine', input_size=input_size),
                dict(type='PackGeoViewInputs')]
    ds = SeededViewDataset(dict(type='UnlabeledCocoDataset', data_root=unlabeled.data_root,
                                ann_file=unlabeled.ann_file, data_prefix=unlabeled.data_prefix,
                                metainfo=unlabeled.metainfo, indices=indices,
                                pipeline=pipeline), num_seeds=1)  # k = 0: the identity view
    diag_path = Path(cfg.data_root) / DIAGNOSTIC_ANN
    diag = {a['id']: a for a in json.loads(diag_path.read_text())['annotations']}
    for start in range(0, len(ds), batch_size):
        batch = pseudo_collate([ds[i] for i in range(start, min(start + batch_size, len(ds)))])
        data = model.data_preprocessor(batch, False)
        with torch.no_grad():
            t_heat = model.heatmaps(model.teacher, data['inputs'])
            s_heat = model.heatmaps(model.student, data['inputs'])
            decision = model.gate_decision(t_heat)
            t_xy = model.decode(t_heat)
            s_xy = model.decode(s_heat)
            b_xy = model.prior_teacher(s_xy)
        peaks = heatmap_peaks(t_heat)
        accept = decision.use_teacher_a
        accept = accept.all(-1) if accept.dim() == 2 else accept
        for i, sample in enumerate(data['data_samples']):
            meta = sample.metainfo
            sid = int(meta['nk_sample_id'])
            if sid not in diag:
                raise KeyError(f'unlabeled annotation {sid} ({meta["img_path"]}) is missing from '
                               f'{diag_path}')
            affine = np.asarray(meta['geo_affine'])
            yield dict(sample_id=sid, teacher_xy=t_xy[i], teacher_peaks=peaks[i],
                       accept=bool(accept[i]), conf=float(decision.conf[i]),
                       kps=float(decision.kps[i]), diagnostic=diag[sid],
                       img_path=meta['img_path'], affine=affine,
                       **{f'image_{name}': to_image(xy[i].numpy(), affine, input_size,
                                                    heatmap_size)
                          for name, xy in (('a', t_xy), ('b', b_xy), ('s', s_xy))})


def main(argv=None) -> int:
    args = parse_args(argv)
    from nk_train.skeleton import load_skeleton

    cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    sigmas = np.asarray(load_skeleton().sigmas)
    groups: dict[str, list[tuple[float, float]]] = {
        'teacherA_accepted': [], 'teacherA_rejected': [], 'teacherB_on_rejected': [],
        'teacherB_all': [], 'student_all': []}
    for crop in crop_predictions(cfg, model, args.indices, args.batch_size):
        ann = crop['diagnostic']
        sa, sb = scores(crop['image_a'], ann, sigmas), scores(crop['image_b'], ann, sigmas)
        groups['teacherA_accepted' if crop['accept'] else 'teacherA_rejected'].append(sa)
        if not crop['accept']:
            groups['teacherB_on_rejected'].append(sb)
        groups['teacherB_all'].append(sb)
        groups['student_all'].append(scores(crop['image_s'], ann, sigmas))

    gate = model.gate
    print(f'gate: thr_conf={gate.thr_conf} thr_kps={gate.thr_kps} level={gate.level}; '
          f'checkpoint {args.checkpoint}; {len(groups["student_all"])} unlabeled crops '
          '(view k=0)')
    print(f'{"group":<22}{"n":>6}{"PCK@0.1":>10}{"OKS":>8}')
    table = {}
    for name, vals in groups.items():
        arr = np.asarray(vals).reshape(-1, 2)
        pck, oks = (arr.mean(0) if len(arr) else (float('nan'), float('nan')))
        table[name] = dict(n=len(arr), pck=float(pck), oks=float(oks))
        print(f'{name:<22}{len(arr):>6}{pck:>10.3f}{oks:>8.3f}')
    if args.json:
        Path(args.json).write_text(json.dumps(dict(config=args.config,
                                                   checkpoint=args.checkpoint,
                                                   groups=table), indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
