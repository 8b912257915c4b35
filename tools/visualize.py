"""The pictures of a run, one sub-command each (PNG files; see nk_train/visualization/).

    python tools/visualize.py pseudo-labels CONFIG --checkpoint CKPT [--out-dir DIR]
        [--per-group 6] [--indices I ...] [--cfg-options model.ddp_prior.checkpoint=PATH ...]
    python tools/visualize.py training WORK_DIR [WORK_DIR ...] [--names N ...] [--out PNG]
    python tools/visualize.py cache --config CONFIG --split SPLIT [--indices I ...]
        [--show P ...] [--views K ...] [--keypoints ANN] [--out PNG]
    python tools/visualize.py results [--results docs/nk_sapiens/results.json] [--out PNG]

``pseudo-labels`` runs ``tools/gating_report.py``'s prediction loop on the unlabeled pool
and writes the gallery (``pseudo_label_gallery.png``) and the gating plots (``gating.png``);
the OKS is against the diagnostic labels (reports only, never a training input). ``training``
overlays the ``scalars.json`` curves of one or more work dirs. ``cache`` previews rows of a
geometric cache (crop, depth, normals, keypoints: the diagnostic labels for the unlabeled
split). ``results`` draws AP per method from an experiment's ``results.json`` (the recorded one:
docs/nk_sapiens/results.json) or a main job ``summary.json``. Each prints the file it wrote.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / 'tools'))
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))

import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from gating_report import DIAGNOSTIC_ANN, crop_predictions, load_model, scores  # noqa: E402

RESULTS_JSON = 'docs/nk_sapiens/results.json'
RESULTS_FIGURE = 'docs/nk_sapiens/figures/results_ap.png'


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='picture', required=True)

    q = sub.add_parser('pseudo-labels', help='pseudo-label gallery and gating plots')
    q.add_argument('config', help='a Stage1 config with a gate and lambda_dev > 0')
    q.add_argument('--checkpoint', required=True)
    q.add_argument('--out-dir', default='.', help='folder for the two PNG files')
    q.add_argument('--per-group', type=int, default=6, help='crops per gallery row')
    q.add_argument('--indices', type=int, nargs='+', help='unlabeled instance positions')
    q.add_argument('--batch-size', type=int, default=8)
    q.add_argument('--cfg-options', nargs='+', action=DictAction, default={})

    t = sub.add_parser('training', help='training curves of one or more work dirs')
    t.add_argument('work_dirs', nargs='+', help='mmengine work dirs (or scalars.json files)')
    t.add_argument('--names', nargs='+', help='legend names (default: the folder names)')
    t.add_argument('--title', default='')
    t.add_argument('--out', default='training_curves.png')

    c = sub.add_parser('cache', help='crops beside their cached depth and normal maps')
    c.add_argument('--config', required=True, help='config holding the geo_cache dict')
    c.add_argument('--split', default='unlabeled')
    c.add_argument('--indices', type=int, nargs='+', help='the subset the cache was built from')
    c.add_argument('--show', type=int, nargs='+', default=[0, 1, 2, 3],
                   help='instance positions in the cache to show')
    c.add_argument('--views', type=int, nargs='+', default=[0, 1], help='view indices k')
    c.add_argument('--keypoints', help='COCO file whose keypoints are drawn (default: the '
                   "split's own, the diagnostic labels for the unlabeled split)")
    c.add_argument('--out', default='cache_preview.png')
    c.add_argument('--cfg-options', nargs='+', action=DictAction, default={})

    r = sub.add_parser('results', help='AP per method with its interval')
    r.add_argument('--results', default=RESULTS_JSON,
                   help="tools/run_experiments.py's results.json or a main job summary.json")
    r.add_argument('--out', default=RESULTS_FIGURE)
    return p.parse_args(argv)


def pseudo_label_records(cfg, model, indices: list[int] | None = None, batch_size: int = 8):
    """``PseudoLabel`` records of the unlabeled pool's identity view (gating_report's loop),
    OKS of Teacher A and Teacher B against the diagnostic labels."""
    from nk_train.skeleton import load_skeleton
    from nk_train.visualization.pseudo_labels import PseudoLabel

    sigmas = np.asarray(load_skeleton().sigmas)
    input_size = tuple(cfg.codec.input_size)
    labels = []
    for crop in crop_predictions(cfg, model, indices, batch_size):
        ann = crop['diagnostic']
        labels.append(PseudoLabel(
            sample_id=crop['sample_id'], img_path=crop['img_path'], affine=crop['affine'],
            input_size=input_size, conf=crop['conf'], kps=crop['kps'],
            accepted=crop['accept'], teacher_a=crop['image_a'], teacher_b=crop['image_b'],
            diagnostic=np.asarray(ann['keypoints'], dtype=np.float64).reshape(-1, 3),
            oks_a=scores(crop['image_a'], ann, sigmas)[1],
            oks_b=scores(crop['image_b'], ann, sigmas)[1]))
    return labels


def pseudo_labels(args) -> list[Path]:
    from nk_train.skeleton import load_skeleton
    from nk_train.visualization.drawing import save
    from nk_train.visualization.gallery import gallery_figure
    from nk_train.visualization.gating_plots import gating_figure

    cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    labels = pseudo_label_records(cfg, model, args.indices, args.batch_size)
    gate = model.gate
    title = (f'{args.checkpoint} ({Path(args.config).name}); gate: thr_conf {gate.thr_conf:g}, '
             f'thr_kps {gate.thr_kps:g}, level {gate.level}')
    out = Path(args.out_dir)
    return [save(gallery_figure(labels, load_skeleton().edges, args.per_group, title),
                 out / 'pseudo_label_gallery.png'),
            save(gating_figure(labels, gate.thr_conf, gate.thr_kps, gate.level, title),
                 out / 'gating.png')]


def training(args) -> list[Path]:
    from nk_train.visualization.drawing import save
    from nk_train.visualization.training_curves import read_run, training_figure

    names = args.names or [None] * len(args.work_dirs)
    if len(names) != len(args.work_dirs):
        raise SystemExit(f'--names: {len(names)} names for {len(args.work_dirs)} work dirs')
    runs = [read_run(w, n) for w, n in zip(args.work_dirs, names)]
    return [save(training_figure(runs, args.title), args.out)]


def cache(args) -> list[Path]:
    from nk_train.cache.settings import GeoCacheSettings
    from nk_train.skeleton import load_skeleton
    from nk_train.visualization.cache_preview import cache_preview_figure, load_cached_views
    from nk_train.visualization.drawing import save

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    settings = GeoCacheSettings.from_config(cfg['geo_cache'])
    split = settings.split(args.split)
    if args.keypoints:
        keypoints, label = args.keypoints, f'keypoints of {args.keypoints}'
    elif split.require_keypoints:
        keypoints, label = settings.ann_path(args.split), 'annotated keypoints'
    else:
        keypoints = Path(settings.data_root) / DIAGNOSTIC_ANN
        label = 'diagnostic label (reports only, never trained on)'
    views = load_cached_views(cfg['geo_cache'], args.split, args.show, args.views,
                              args.indices, keypoints)
    kind = settings.teacher.get('kind')
    title = f'Geometric cache {settings.split_dir(args.split)} ({args.split} split), ' \
            f'teacher kind {kind!r}'
    if kind == 'stand_in':
        title += ('\nSTAND-IN teacher (seeded random weights): the maps mean nothing as depth or '
                  'normals; this picture checks that crop, maps and keypoints line up')
    return [save(cache_preview_figure(views, load_skeleton().edges, title, label), args.out)]


def results(args) -> list[Path]:
    from nk_train.visualization.drawing import save
    from nk_train.visualization.results_figure import read_results, results_figure

    return [save(results_figure(read_results(args.results)), args.out)]


def main(argv=None) -> int:
    args = parse_args(argv)
    commands = {'pseudo-labels': pseudo_labels, 'training': training, 'cache': cache,
                'results': results}
    for path in commands[args.picture](args):
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
