# Ablation +CMGC (CPU-size): ./_base_/stage1_variants.py's +CMGC on the baseline, whose
# cmgc_unlabeled_dataset reads the geometric cache (how to build it: stage1_variants.py).
_base_ = ['./stage1_ssl_baseline_cpu.py', './_base_/stage1_variants.py']

lambda_geo_depth = _base_.cmgc_lambda_geo_depth
lambda_geo_normal = _base_.cmgc_lambda_geo_normal
model = dict(semi_train_cfg=dict(lambda_geo_depth=lambda_geo_depth,
                                 lambda_geo_normal=lambda_geo_normal))
train_dataloader = dict(dataset=dict(datasets=[_base_.labeled_dataset,
                                               _base_.cmgc_unlabeled_dataset]))
