# Runtime shared by every NK-Sapiens config (mmpose 1.x conventions, iteration-based loops).
default_scope = 'mmpose'
custom_imports = dict(imports=['nk_train'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # log_metric_by_epoch=False: validation rows in scalars.json carry their iteration
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False),
)
# FiniteTrainingHook: stop at the first non-finite loss; never save non-finite weights.
custom_hooks = [dict(type='SyncBuffersHook'), dict(type='FiniteTrainingHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='PoseLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
backend_args = dict(backend='local')
randomness = dict(seed=0)
