"""cmgc_source='online' computes what the cache holds: on the same seeded views of real
unlabeled crops, the online stand-in teacher's maps equal the cached ones within the storage
quantisation (float16 depth: relative 1e-3; int8 normals: 1/127 per component), the validity
masks are identical (and hold both foreground and background), and so do the CMGC losses on
the same keypoints."""
from __future__ import annotations

import numpy as np
import torch
from full_helpers import GEO_CACHE_CPU, UNLABELED_INDICES
from mmengine.config import Config
from mmengine.registry import init_default_scope

from nk_train.cache.settings import GeoCacheSettings
from nk_train.cmgc.losses import CMGCLoss
from nk_train.cmgc.online_geo_teacher import OnlineGeoTeacher
from nk_train.data.geo_views import stack_geo_maps, stack_teacher_crops
from nk_train.data.seeded_views import SeededViewDataset


def test_online_teacher_matches_the_cache(repo_root, geo_cache_root):
    init_default_scope('mmpose')
    geo = Config.fromfile(str(repo_root / GEO_CACHE_CPU)).geo_cache.to_dict()
    geo['root'] = str(geo_cache_root)
    pipeline = [
        dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
        dict(type='GeoTeacherCrop', cache=geo),
        dict(type='SeededTopdownAffine', input_size=geo['input_size'], aug=geo['aug'],
             global_seed=geo['global_seed']),
        dict(type='LoadGeoCacheMaps', cache=geo, split='unlabeled', indices=UNLABELED_INDICES),
        dict(type='PackGeoViewInputs'),
    ]
    ds = SeededViewDataset(dict(
        type='UnlabeledCocoDataset', data_root=geo['data_root'],
        ann_file=geo['splits']['unlabeled']['ann_file'],
        data_prefix=dict(img=geo['image_prefix']), indices=UNLABELED_INDICES,
        metainfo=dict(from_file='configs/_base_/datasets/infant_coco17.py'), pipeline=pipeline),
        num_seeds=geo['splits']['unlabeled']['num_seeds'])
    samples = [ds[i]['data_samples'] for i in range(0, 8)]  # 2 instances x 4 views
    cached_depth, cached_normal, cached_valid = stack_geo_maps(samples, 'cpu')
    settings = GeoCacheSettings.from_config(geo)
    online = OnlineGeoTeacher(settings.teacher_files_resolved(), settings.map_size)
    online_depth, online_normal, online_valid = online(*stack_teacher_crops(samples, 'cpu'))
    mw, mh = geo['map_size']
    assert online_depth.shape == cached_depth.shape == (8, 1, mh, mw)
    torch.testing.assert_close(online_depth, cached_depth, rtol=1e-3, atol=1e-3)
    assert (online_normal - cached_normal).abs().max() <= 1.0 / 127 + 1e-4
    torch.testing.assert_close(online_valid, cached_valid, rtol=0, atol=0)
    assert 0.1 < float(cached_valid.mean()) < 0.9
    loss = CMGCLoss(str(repo_root / 'stats/skeleton_stats.json'))
    gen = torch.Generator().manual_seed(0)
    coords = torch.rand(8, 17, 2, generator=gen) * torch.tensor([47.0, 63.0])
    weights = torch.ones(8, 17)
    a = loss(coords, weights, cached_depth, cached_normal, cached_valid)
    b = loss(coords, weights, online_depth, online_normal, online_valid)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=2e-2, atol=2e-3)
    assert np.isfinite([float(v) for v in a.values()]).all()
