# Stage1 baseline: L = L_sup + lambda_cons * L_cons. The Stage0 student (Sapiens-0.3b, UDP
# heatmaps, layer-decay AdamW) keeps training on labeled crops while an EMA copy of it
# (Teacher A) labels the unlabeled crops: the teacher sees the weak view (seeded crop only),
# the student each strong view (the same crop + photometric/occlusion noise), and L_cons pulls
# the student's heatmaps to the teacher's where the teacher's peak is confident.
#
# Start from a Stage0 checkpoint: put it at `stage0_checkpoint` or pass
#   --cfg-options model.init_from=work_dirs/stage0_supervised/<best>.pth
# Validation/test/save_best use the teacher. To evaluate the student instead:
#   --cfg-options model.semi_test_cfg.forward_on=student test_evaluator.prefix=student/coco
_base_ = ['./stage0_supervised.py']

stage0_checkpoint = 'checkpoints/nk_sapiens/stage0_supervised.pth'

# ---- semi-supervised settings (every lambda lives here) --------------------------------
source_ratio = [1, 1]  # labeled : unlabeled crops in each batch
num_strong_views = 1
lambda_cons = 1.0
cons_mode = 'mse'  # 'mse' or 'kl' on heatmaps
cons_target = 'soft'  # 'soft' = teacher heatmap, 'hard' = Gaussian at the teacher's peak
cons_conf_thr = 0.5  # keep a keypoint when the teacher's heatmap peak >= this
ema_decay = 0.999  # the weight the teacher keeps (mmengine/mmdet momentum = 1 - decay)
ema_warmup_iters = 0
eval_branch = 'teacher'
# Keypoint-centred cutout of the strong views: patches per view on keypoints Teacher A finds on
# the weak view (0 = off; the random CoarseDropout below applies either way), each this
# fraction of the crop's width and height, on keypoints whose teacher peak is >= the threshold.
kpt_cutout_num = 0
kpt_cutout_size = 0.2
kpt_cutout_conf = 0.3

# NK-Sapiens terms, all off in the baseline; the ablation configs switch them on with the
# values of ./_base_/stage1_variants.py.
lambda_dev = 0.0  # L_dev: student keypoints vs the ddp_prior's denoising of them (Teacher B)
# L_dev only on keypoints the prior moves by at least this fraction of the heatmap size
# (0 = every keypoint; 0.05 = 5 % of the heatmap's width/height)
dev_min_shift = 0.0
lambda_geo_depth = 0.0  # CMGC limb rigidity against the cached depth
lambda_geo_normal = 0.0  # CMGC limb/surface tangency against the cached normals
cmgc_source = 'cache'  # 'online' runs the geometric teacher in the step (tests, benchmarks)
# tools/train_ddp_prior.py --out; relative: inside the NK-Sapiens checkout (nk_train/paths.py).
# Read when training starts; evaluation does not need it.
ddp_prior_checkpoint = 'work_dirs/ddp_prior/ddp_prior.pth'

# The weak view is the seeded crop of the geometric cache (same seed, ranges, K and crop size,
# read from the geo_cache dict that stage0_supervised.py inherits), so a cached depth/normal
# row matches the crop the teacher sees.
geo_cache = _base_.geo_cache

# ---- model ------------------------------------------------------------------------------
# The Stage0 model; its backbone's MAE init is superseded by the Stage0 checkpoint.
pose_model = _base_.model
pose_model.backbone.init_cfg = None
model = dict(
    _delete_=True,
    type='SemiTopdownPoseEstimator',
    pose_model=pose_model,
    consistency_loss=dict(type='HeatmapConsistencyLoss', mode=cons_mode, target=cons_target,
                          conf_thr=cons_conf_thr, sigma=_base_.sigma),
    semi_train_cfg=dict(lambda_cons=lambda_cons, lambda_dev=lambda_dev,
                        dev_min_shift=dev_min_shift, lambda_geo_depth=lambda_geo_depth,
                        lambda_geo_normal=lambda_geo_normal, cmgc_source=cmgc_source,
                        kpt_cutout_num=kpt_cutout_num, kpt_cutout_size=kpt_cutout_size,
                        kpt_cutout_conf=kpt_cutout_conf),
    semi_test_cfg=dict(forward_on=eval_branch),
    init_from=stage0_checkpoint,
    gate=None,
    ddp_prior=dict(checkpoint=ddp_prior_checkpoint, denoise=dict(mode='x0', noise_level='auto')),
    cmgc_loss=dict(type='CMGCLoss', stats_file='stats/skeleton_stats.json'),
    geo_cache=geo_cache,
)
optim_wrapper = dict(constructor='StudentLayerDecayOptimWrapperConstructor')
# GeoCacheCopiesHook: refuse to train when a --cfg-options geo_cache.* override did not reach
# the copies of geo_cache in this config (LoadGeoCacheMaps' cache, model.geo_cache).
custom_hooks = [
    *_base_.custom_hooks,
    dict(type='GeoCacheCopiesHook'),
    dict(type='TeacherEMAHook', decay=ema_decay, warmup_iters=ema_warmup_iters),
]
default_hooks = dict(checkpoint=dict(save_best=f'{eval_branch}/coco/AP'))

# ---- data -------------------------------------------------------------------------------
labeled_pipeline = [*_base_.train_pipeline, dict(type='ToBranch', branch='sup')]
strong_pipeline = [
    dict(type='PhotometricDistortion'),
    dict(type='CoarseDropout', prob=0.5, num_holes=(1, 4), hole_size=(0.05, 0.25)),
]
unlabeled_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='SeededTopdownAffine', input_size=_base_.codec['input_size'], aug=geo_cache.aug,
         global_seed=geo_cache.global_seed),
    dict(type='WeakStrongViews', num_strong_views=num_strong_views,
         strong_pipeline=strong_pipeline),
]
# The unlabeled pipeline of +CMGC (this baseline reads no cache): after the crop it reads the
# cached maps of the weak view's (id, k) row, and packs them with the views. Written once for
# both sizes: the CPU baseline puts its own crop size and cache into these steps.
cmgc_unlabeled_pipeline = [
    *unlabeled_pipeline[:3],  # LoadImage, GetBBoxCenterScale, SeededTopdownAffine
    dict(type='LoadGeoCacheMaps', cache=geo_cache, split='unlabeled'),
    dict(unlabeled_pipeline[3], pack=dict(type='PackGeoViewInputs')),  # WeakStrongViews
]
labeled_dataset = dict(_base_.train_dataloader.dataset, pipeline=labeled_pipeline)
unlabeled_dataset = dict(
    type='SeededViewDataset',
    num_seeds=geo_cache.splits.unlabeled.num_seeds,
    dataset=dict(
        type='UnlabeledCocoDataset',
        data_root=_base_.data_root,
        ann_file=_base_.train_unlabeled_ann,
        data_prefix=dict(img=_base_.image_prefix),
        metainfo=_base_.metainfo,
        pipeline=unlabeled_pipeline))
# What the +CMGC configs train on in place of unlabeled_dataset.
cmgc_unlabeled_dataset = dict(
    unlabeled_dataset,
    dataset=dict(unlabeled_dataset['dataset'], pipeline=cmgc_unlabeled_pipeline))
train_dataloader = dict(
    _delete_=True,
    batch_size=_base_.train_batch_size,
    num_workers=_base_.num_workers,
    persistent_workers=True,
    # The sampler must be told the batch size: it composes each batch by source.
    sampler=dict(type='MixedSourceSampler', batch_size=_base_.train_batch_size,
                 source_ratio=source_ratio),
    collate_fn=dict(type='ssl_collate'),
    dataset=dict(type='SourceConcatDataset', datasets=[labeled_dataset, unlabeled_dataset]))

val_evaluator = dict(prefix=f'{eval_branch}/coco')
test_evaluator = val_evaluator
