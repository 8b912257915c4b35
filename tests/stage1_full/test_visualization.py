"""tools/visualize.py and nk_train/visualization on real runs: a short real Stage1 run (full
config, validated), its checkpoint's pseudo-labels and the CPU geometric cache of the
unlabeled subset. The pictures are written and not blank, a keypoint lands on the pixel an
independent computation (mmpose's own UDP warp) puts it, and the cached maps sit on their
UDP grid."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from full_helpers import ABLATIONS_CPU, GEO_CACHE_CPU, UNLABELED_INDICES, run_cli, subset_options
from matplotlib.colors import Normalize, to_rgb
from matplotlib.image import imread

ROOT = Path(__file__).resolve().parents[2]
VAL_INDICES = [0, 10, 20, 30]  # of the validation part (40 crops)
ITERS = 10


def _cli_options(options: dict) -> list[str]:
    return [f'{k}={json.dumps(v) if isinstance(v, list) else v}' for k, v in options.items()]


@pytest.fixture(scope='module')
def stage1_run(repo_root, stage0_ckpt, prior_ckpt, geo_cache_root, tmp_path_factory) -> Path:
    """A real Stage1 full run: 10 iterations on the subsets, validated at iteration 10."""
    work = tmp_path_factory.mktemp('viz_stage1_full')
    options = {
        **subset_options({'root': str(geo_cache_root)}, cmgc=True),
        'model.init_from': str(stage0_ckpt), 'model.ddp_prior.checkpoint': str(prior_ckpt),
        'train_cfg.max_iters': ITERS, 'train_cfg.val_interval': ITERS,
        'default_hooks.checkpoint.interval': ITERS, 'default_hooks.logger.interval': 5,
        'train_dataloader.batch_size': 4, 'train_dataloader.sampler.batch_size': 4,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'val_dataloader.dataset.indices': VAL_INDICES, 'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False}
    run_cli(['tools/train.py', ABLATIONS_CPU['full'], '--work-dir', str(work), '--cfg-options',
             *_cli_options(options)], repo_root)
    return work


def _not_blank(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 10_000, path
    img = imread(path)[..., :3]
    assert img.std() > 0.05, f'{path} is (nearly) one colour'
    return img


def _png_pixel(fig, ax, xy) -> tuple[int, int]:
    """(row, col) of the PNG pixel under data point ``xy`` of ``ax`` (figure not cropped)."""
    x, y = ax.transData.transform(xy)
    height = round(fig.get_figheight() * fig.dpi)
    return int(height - y), int(x)


def test_training_plot_reads_a_real_run(repo_root, stage1_run, stage0_ckpt, tmp_path):
    from nk_train.visualization.training_curves import read_run, training_figure

    run = read_run(stage1_run, 'full')
    assert max(run.train) == ITERS
    for key in ('loss_cons', 'loss_dev', 'loss_geo_depth', 'num_use_teacherA',
                'num_use_teacherB', 'cons_keep_ratio', 'gate_conf', 'gate_kps', 'lr'):
        its, values = run.series(key)
        assert len(its) and np.isfinite(values).all(), key
    # step 0 in the log (mmengine's epoch): placed at the iteration validation ran after
    assert list(run.val) == [ITERS] and 'teacher/coco/AP' in run.val[ITERS]

    stage0 = read_run(stage0_ckpt.parent, 'stage0')
    fig = training_figure([stage0, run])
    titles = {ax.get_title(): ax for ax in fig.axes}
    assert 'validation AP (COCO, area = bbox w x h)' in titles
    dev = titles['L_dev (x lambda_dev)']
    assert any('not logged by: stage0' == t.get_text() for t in dev.texts)
    assert len(dev.lines) == 1  # only the Stage1 run logs L_dev

    out = tmp_path / 'curves.png'
    run_cli(['tools/visualize.py', 'training', str(stage0_ckpt.parent), str(stage1_run),
             '--names', 'stage0', 'full', '--out', str(out)], repo_root)
    _not_blank(out)


def test_training_reader_names_a_bad_line(tmp_path):
    from nk_train.visualization.training_curves import read_run

    log = tmp_path / '20260101_000000' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text('{"loss": 1.0, "iter": 1, "step": 1}\n{"loss": \n')
    with pytest.raises(ValueError, match=r'scalars.json:2: not a JSON line'):
        read_run(tmp_path)
    with pytest.raises(FileNotFoundError, match='no \\*/vis_data/scalars.json'):
        read_run(tmp_path / '20260101_000000')


def test_pseudo_label_pictures_are_written(repo_root, stage1_run, prior_ckpt, tmp_path):
    run_cli(['tools/visualize.py', 'pseudo-labels', ABLATIONS_CPU['full'], '--checkpoint',
             str(stage1_run / f'iter_{ITERS}.pth'), '--out-dir', str(tmp_path),
             '--per-group', '3', '--indices', *map(str, UNLABELED_INDICES),
             '--cfg-options', f'model.ddp_prior.checkpoint={prior_ckpt}'], repo_root)
    for name in ('pseudo_label_gallery.png', 'gating.png'):
        _not_blank(tmp_path / name)


def _expected_display_xy(repo_root: Path, position: int, joint: int, display_wh):
    """Where mmpose's own top-down recipe (bbox_xyxy2cs with padding 1.25, TopdownAffine's
    aspect fix, get_udp_warp_matrix) puts a diagnostic keypoint of unlabeled instance
    ``position`` in a crop of ``display_wh``; independent of nk_train's crop code."""
    from mmpose.datasets.transforms import TopdownAffine
    from mmpose.structures.bbox import bbox_xyxy2cs, get_udp_warp_matrix

    ann_dir = repo_root / 'data/syrip/annotations'
    unlabeled = json.loads((ann_dir / 'train_unlabeled.json').read_text())
    ann = unlabeled['annotations'][position]
    img = next(i for i in unlabeled['images'] if i['id'] == ann['image_id'])
    x, y, w, h = ann['bbox']
    assert 0 <= x and 0 <= y and x + w <= img['width'] - 1 and y + h <= img['height'] - 1
    center, scale = bbox_xyxy2cs(np.array([x, y, x + w, y + h], np.float32), padding=1.25)
    scale = TopdownAffine._fix_aspect_ratio(scale, aspect_ratio=display_wh[0] / display_wh[1])
    warp = get_udp_warp_matrix(center, scale, 0.0, output_size=display_wh)
    diag = json.loads((ann_dir / 'train_unlabeled_diagnostic_keypoints.json').read_text())
    kpt = np.asarray(next(a for a in diag['annotations'] if a['id'] == ann['id'])['keypoints'],
                     np.float64).reshape(-1, 3)[joint]
    assert kpt[2] > 0, 'choose a labeled joint'
    return ann['id'], warp[:, :2] @ kpt[:2] + warp[:, 2]


def test_gallery_keypoint_lands_on_its_pixel(repo_root, stage1_run, prior_ckpt, tmp_path):
    sys.path.insert(0, str(ROOT / 'tools'))
    from gating_report import load_model
    from visualize import pseudo_label_records

    from nk_train.skeleton import load_skeleton
    from nk_train.visualization.drawing import REFERENCE_COLOR, save
    from nk_train.visualization.gallery import DISPLAY_WIDTH, gallery_figure, sample_label

    position, joint = 30, load_skeleton().keypoint_names.index('left_shoulder')
    cfg, model = load_model(str(ROOT / ABLATIONS_CPU['full']),
                            str(stage1_run / f'iter_{ITERS}.pth'),
                            {'model.ddp_prior.checkpoint': str(prior_ckpt)})
    labels = pseudo_label_records(cfg, model, [position])
    w, h = labels[0].input_size
    sid, xy = _expected_display_xy(repo_root, position, joint,
                                   (DISPLAY_WIDTH, round(DISPLAY_WIDTH * h / w)))
    assert labels[0].sample_id == sid
    fig = gallery_figure(labels, load_skeleton().edges, per_group=1)
    png = save(fig, tmp_path / 'gallery.png')
    ax = next(a for a in fig.axes if a.get_label() == sample_label(sid))
    row, col = _png_pixel(fig, ax, xy)
    pixel = imread(png)[row, col, :3]
    np.testing.assert_allclose(pixel, to_rgb(REFERENCE_COLOR), atol=0.02)


def test_cache_preview_keypoints_and_maps_line_up(repo_root, geo_cache_root, tmp_path):
    from matplotlib import colormaps
    from mmengine.config import Config

    from nk_train.skeleton import load_skeleton
    from nk_train.visualization.cache_preview import (DEPTH_CMAP, MASKED_GREY,
                                                     cache_preview_figure, load_cached_views)
    from nk_train.visualization.drawing import REFERENCE_COLOR, save

    geo_cache = Config.fromfile(str(ROOT / GEO_CACHE_CPU))['geo_cache']
    geo_cache['root'] = str(geo_cache_root)
    diag = ROOT / 'data/syrip/annotations/train_unlabeled_diagnostic_keypoints.json'
    position, joint = 1, load_skeleton().keypoint_names.index('left_shoulder')
    sid, xy = _expected_display_xy(repo_root, UNLABELED_INDICES[position], joint, (192, 256))
    views = load_cached_views(geo_cache, 'unlabeled', [position], [0, 1], UNLABELED_INDICES,
                              diag)
    assert [(v.sample_id, v.k) for v in views] == [(sid, 0), (sid, 1)]
    assert views[0].valid.any() and not views[0].valid.all()  # foreground and background

    fig = cache_preview_figure(views, load_skeleton().edges, 'test', 'diagnostic label')
    png = imread(save(fig, tmp_path / 'preview.png'))[..., :3]
    panels = [a for a in fig.axes if a.get_label() == f'sample {sid} k 0']
    assert len(panels) == 3  # crop, depth, normals: the keypoint is drawn on each
    for ax in panels:
        row, col = _png_pixel(fig, ax, xy)
        np.testing.assert_allclose(png[row, col], to_rgb(REFERENCE_COLOR), atol=0.02)

    # without keypoints, the depth panel shows map pixel (u, r) where UDP puts it in the crop
    # (centre at crop pixel u (w-1)/(mw-1)): probed at +-0.35 map pixels around that centre, so
    # a grid shifted by a third of a map pixel (e.g. stretched to the crop's outer edges) fails
    bare = load_cached_views(geo_cache, 'unlabeled', [position], [0], UNLABELED_INDICES)
    fig = cache_preview_figure(bare, load_skeleton().edges, 'test', 'none')
    png = imread(save(fig, tmp_path / 'bare.png'))[..., :3]
    depth_ax = [a for a in fig.axes if a.get_label() == f'sample {sid} k 0'][1]
    v = bare[0]
    (mh, mw), (h, w) = v.depth.shape, v.crop.shape[:2]
    fx, fy = (w - 1) / (mw - 1), (h - 1) / (mh - 1)
    shown = np.ma.masked_where(~v.valid, v.depth)
    norm = Normalize(float(shown.min()), float(shown.max()))
    inner = np.argwhere(v.valid[2:-2, 2:-2]) + 2
    for r, u in inner[np.linspace(0, len(inner) - 1, 3).astype(int)]:
        expected = colormaps[DEPTH_CMAP](norm(v.depth[r, u]))[:3]
        for du, dr in ((-0.35, -0.35), (0.35, 0.35), (-0.35, 0.35), (0.35, -0.35)):
            row, col = _png_pixel(fig, depth_ax, ((u + du) * fx, (r + dr) * fy))
            np.testing.assert_allclose(png[row, col], expected, atol=0.02,
                                       err_msg=f'map pixel ({u}, {r}) probed at ({du}, {dr})')

    # the cache's validity mask (the stand-in's background, the crop border) is greyed out
    _, depth_ax, normal_ax = [a for a in fig.axes if a.get_label() == f'sample {sid} k 0']
    m = v
    for ax in (depth_ax, normal_ax):
        for r, u in np.argwhere(~m.valid[1:-1, 1:-1])[::37] + 1:  # not under the frame
            row, col = _png_pixel(fig, ax, (u * fx, r * fy))
            np.testing.assert_allclose(png[row, col], to_rgb(MASKED_GREY), atol=0.02)

    out = tmp_path / 'cli.png'
    run_cli(['tools/visualize.py', 'cache', '--config', GEO_CACHE_CPU, '--indices',
             *map(str, UNLABELED_INDICES), '--show', '0', '1', '--views', '0', '1', '--out',
             str(out), '--cfg-options', f'geo_cache.root={geo_cache_root}'], repo_root)
    _not_blank(out)
