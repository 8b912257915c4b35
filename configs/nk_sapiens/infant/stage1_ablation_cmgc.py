# Ablation +CMGC (full-size): the baseline plus the depth/normal consistency of the student's
# strong-view keypoints with the geometric cache (build it first:
#   python precompute/geo_cache.py --split unlabeled --config <this config>).
# With a subset of the unlabeled set (dataset indices), give LoadGeoCacheMaps the same
# indices: the cache of a subset is a different cache (its fingerprint).
_base_ = ['./stage1_ssl_baseline.py']

lambda_geo_depth = 1e-3  # first guesses, not tuned (see nk_train/cmgc/losses.py for scales)
lambda_geo_normal = 1e-3
model = dict(semi_train_cfg=dict(lambda_geo_depth=lambda_geo_depth,
                                 lambda_geo_normal=lambda_geo_normal))

# The unlabeled pipeline reads the (id, k) row of the weak view and packs the maps with it.
unlabeled_pipeline = [
    *_base_.unlabeled_pipeline[:3],  # LoadImage, GetBBoxCenterScale, SeededTopdownAffine
    dict(type='LoadGeoCacheMaps', cache=_base_.geo_cache, split='unlabeled'),
    dict(_base_.unlabeled_pipeline[3], pack=dict(type='PackGeoViewInputs')),  # WeakStrongViews
]
train_dataloader = dict(dataset=dict(datasets=[
    _base_.train_dataloader.dataset.datasets[0],
    dict(_base_.train_dataloader.dataset.datasets[1],
         dataset=dict(_base_.train_dataloader.dataset.datasets[1].dataset,
                      pipeline=unlabeled_pipeline)),
]))
