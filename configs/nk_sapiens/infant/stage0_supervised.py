# Stage0: supervised heatmap training of Sapiens-0.3b (1024x768, UDP heatmaps) on the labeled
# infant set. The Sapiens COCO recipe (layer-decay AdamW, linear warm-up, step decay, flip
# test), iteration-based so Stage0 and Stage1 schedules compare directly.
# geo_cache.py (which inherits infant_data.py) is a base so that Stage1 configs, which inherit
# this file, read the seeded-view settings from the one geo_cache dict.
_base_ = ['./_base_/default_runtime.py', './_base_/geo_cache.py']

# ---- model size and input -------------------------------------------------------------
model_name = 'sapiens_0.3b'
embed_dim = 1024
num_layers = 24
image_size = [768, 1024]  # width, height
heatmap_size = [image_size[0] // 4, image_size[1] // 4]
patch_size = 16
sigma = 6
num_keypoints = 17
head_channels = (768, 768)
# The Sapiens MAE-pretrained backbone (a `_clean` file or the raw one with its `backbone.` keys;
# relative to the working directory, like every mmengine path). To start from a Sapiens COCO
# pose checkpoint instead: --cfg-options load_from=PATH model.backbone.init_cfg=None. Both load
# whole or fail naming the keys that do not fit (SapiensVisionTransformer/SapiensHeatmapHead:
# Sapiens' layout on the stock stack too, see nk_train/compat/sapiens_models.py).
pretrained_checkpoint = 'checkpoints/sapiens_0.3b/sapiens_0.3b_epoch_1600_clean.pth'

# ---- schedule (per GPU batch; 8 GPUs x 32 = the 256 Sapiens used) ---------------------
max_iters = 16000
val_interval = 1000
warmup_iters = 500
# Per GPU. Measured on an 80 GiB H100 (benchmarks/sapiens_gpu_step.py, bf16): a Stage1 step
# with 8 labeled + 8 unlabeled crops peaks at 59 GiB; 12 + 12 and 16 + 16 run out of memory.
# Stage1 inherits this size (split by its source_ratio).
train_batch_size = 16
val_batch_size = 32
num_workers = 8

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.1),
    # mmpose's layer-decay constructor already exempts biases, norms and pos_embed from
    # weight decay (1-D parameters), so no custom_keys are needed.
    paramwise_cfg=dict(num_layers=num_layers, layer_decay_rate=0.85),
    constructor='LayerDecayOptimWrapperConstructor',
    clip_grad=dict(max_norm=1.0, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', begin=0, end=warmup_iters, start_factor=0.001, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, gamma=0.1,
         milestones=[max_iters * 170 // 210, max_iters * 200 // 210]),
]
auto_scale_lr = dict(base_batch_size=512)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=val_interval, save_best='coco/AP', rule='greater', max_keep_ckpts=1))

# ---- model ----------------------------------------------------------------------------
codec = dict(type='UDPHeatmap', input_size=image_size, heatmap_size=heatmap_size, sigma=sigma)
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='SapiensVisionTransformer',
        arch=model_name,
        img_size=(image_size[1], image_size[0]),
        patch_size=patch_size,
        qkv_bias=True,
        final_norm=True,
        drop_path_rate=0.0,
        with_cls_token=False,
        out_type='featmap',
        patch_cfg=dict(padding=2),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained_checkpoint),
    ),
    head=dict(
        type='SapiensHeatmapHead',
        in_channels=embed_dim,
        out_channels=num_keypoints,
        deconv_out_channels=head_channels,
        deconv_kernel_sizes=(4, 4),
        conv_out_channels=head_channels,
        conv_kernel_sizes=(1, 1),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=False),
)

# ---- data -----------------------------------------------------------------------------
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size'], use_udp=True),
    dict(type='PhotometricDistortion'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size'], use_udp=True),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        data_mode=_base_.data_mode,
        ann_file=_base_.train_labeled_ann,
        split=_base_.train_split,
        data_prefix=dict(img=_base_.image_prefix),
        metainfo=_base_.metainfo,
        pipeline=train_pipeline,
    ))
val_dataloader = dict(
    batch_size=val_batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=_base_.dataset_type,
        data_root=_base_.data_root,
        data_mode=_base_.data_mode,
        ann_file=_base_.train_labeled_ann,
        split=_base_.val_split,
        data_prefix=dict(img=_base_.image_prefix),
        metainfo=_base_.metainfo,
        test_mode=True,
        pipeline=val_pipeline,
    ))
# Validation (checkpoint selection): the held-out part of train_labeled, ground-truth boxes.
# Test: Test100, same loader otherwise.
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file=_base_.test_ann,
                 bbox_file=_base_.test_bbox_file, split=None))
val_evaluator = dict(type='InfantCocoMetric', ann_file=_base_.data_root + _base_.train_labeled_ann,
                     split=_base_.val_split)
test_evaluator = dict(type='InfantCocoMetric', ann_file=_base_.data_root + _base_.test_ann)
