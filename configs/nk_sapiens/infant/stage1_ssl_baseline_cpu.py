# CPU-size Stage1 baseline on the SyRIP sample (200 labeled + 300 unlabeled images): the full
# Stage1 recipe with the model of stage0_supervised_cpu.py (4-layer ViT, 128x96 input), so a
# checkpoint of that config initialises it; labeled crops get its milder augmentation. Both
# take the model sizes and pipelines from ./_base_/cpu_model.py, and the CPU geometric cache
# comes in through ./_base_/stage1_geo_cache_cpu.py (the full baseline on that cache). Values
# derived from them (pipelines wrapped for Stage1, batch composition, schedule) are restated,
# because mmengine evaluates a base file's expressions before the child overrides them; the
# parent's unlabeled pipelines are taken over with the CPU crop and cache put into their steps.
# tests/stage1 checks that the pose model here equals stage0_supervised_cpu.py's.
_base_ = ['./_base_/stage1_geo_cache_cpu.py', './_base_/cpu_model.py']

stage0_checkpoint = 'work_dirs/stage0_supervised_cpu/iter_3000.pth'

embed_dim = _base_.cpu_embed_dim
num_layers = _base_.cpu_num_layers
image_size = _base_.cpu_image_size  # width, height
heatmap_size = _base_.cpu_heatmap_size
sigma = _base_.cpu_sigma
head_channels = _base_.cpu_head_channels

max_iters = 1000
val_interval = 500
warmup_iters = 50
train_batch_size = 16  # 8 labeled + 8 unlabeled
val_batch_size = 16
num_workers = 2
# A short run: a faster teacher than the full recipe's 0.999.
ema_decay = 0.99
# Chosen on the validation split (tools/tune_on_val.py -> docs/nk_sapiens/tuning_val.json,
# three variants, one seed, 400 iterations): lambda_cons 10 with the teacher-peak filter at
# 0.3 (val AP 0.173) over the parent's 1.0 / 0.5 (0.170) and hard targets (0.158). The margin
# is within what 40 validation images can resolve: a choice, not evidence. The third round
# (below) lowered lambda_cons to 3.
cons_conf_thr = 0.3
# Second round (docs/nk_sapiens/tuning_val_levers_seed*.json: seeds 0-2, 400 iterations, a new
# Stage0): keypoint-centred cutout, 2 patches per strong view, mean val AP 0.149 over the three
# seeds against 0.146 for 12 labeled + 4 unlabeled crops per batch and 0.134 with neither.
# With it the Baseline still stayed below the control on Test100 (docs/nk_sapiens/round2/).
kpt_cutout_num = 2
# Third round (docs/nk_sapiens/tuning_val_round3_seed0.json: seed 0 only, on top of the cutout):
# lambda_cons 3 reached val AP 0.151 against 0.146 at 10, 0.145 with the filter at 0.5 and
# 0.132 with hard targets; a one-seed margin, so a choice, not evidence.
# Its Test100 round: docs/nk_sapiens/round3/.
lambda_cons = 3.0
# Fourth round (docs/nk_sapiens/tuning_val_round4_seed*.json: seeds 0-2, this config against
# flip-averaged pseudo-labels): teacher_flip=True reached mean val AP 0.161, and 0.152 with
# lambda_cons 10, against 0.172 here, lower on every seed, so it stays off. Its Test100 round
# (this config, 5 seeds): docs/nk_sapiens/round4/.

train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=num_layers))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=warmup_iters, start_factor=0.001, by_epoch=False),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, gamma=0.1,
         milestones=[max_iters * 170 // 210, max_iters * 200 // 210]),
]
auto_scale_lr = dict(base_batch_size=train_batch_size)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=val_interval))
custom_hooks = [
    *_base_.custom_hooks[:-1],  # the parent's, without its TeacherEMAHook
    dict(type='TeacherEMAHook', decay=ema_decay, warmup_iters=_base_.ema_warmup_iters),
]

codec = _base_.cpu_codec
model = dict(
    pose_model=dict(backbone=_base_.cpu_backbone, head=_base_.cpu_head),
    semi_train_cfg=dict(lambda_cons=lambda_cons, kpt_cutout_num=kpt_cutout_num),
    consistency_loss=dict(sigma=sigma, conf_thr=cons_conf_thr),
    init_from=stage0_checkpoint)


def at_cpu_size(pipeline):
    """A full-size unlabeled pipeline with the CPU crop and the CPU cache in its steps (a
    function: mmengine keeps it out of the config)."""
    cpu = dict(SeededTopdownAffine=dict(input_size=codec['input_size']),
               LoadGeoCacheMaps=dict(cache=_base_.geo_cache))
    return [dict(step, **cpu.get(step.type, {})) for step in pipeline]


train_pipeline = _base_.cpu_train_pipeline
labeled_pipeline = [*train_pipeline, dict(type='ToBranch', branch='sup')]
unlabeled_pipeline = at_cpu_size(_base_.unlabeled_pipeline)
cmgc_unlabeled_pipeline = at_cpu_size(_base_.cmgc_unlabeled_pipeline)
val_pipeline = _base_.cpu_val_pipeline
labeled_dataset = dict(_base_.labeled_dataset, pipeline=labeled_pipeline)
unlabeled_dataset = dict(
    _base_.unlabeled_dataset,
    dataset=dict(_base_.unlabeled_dataset.dataset, pipeline=unlabeled_pipeline))
cmgc_unlabeled_dataset = dict(
    _base_.cmgc_unlabeled_dataset,
    dataset=dict(_base_.cmgc_unlabeled_dataset.dataset, pipeline=cmgc_unlabeled_pipeline))
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=num_workers,
    sampler=dict(batch_size=train_batch_size),
    dataset=dict(datasets=[labeled_dataset, unlabeled_dataset]))
val_dataloader = dict(
    batch_size=val_batch_size, num_workers=num_workers,
    dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
