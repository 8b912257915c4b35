# The equal-compute control (CPU-size): ./_base_/stage1_variants.py's control on the baseline.
_base_ = ['./stage1_ssl_baseline_cpu.py', './_base_/stage1_variants.py']

lambda_cons = _base_.control_lambda_cons
kpt_cutout_num = 0  # the cutout acts on unlabeled strong views, which the control has none of
model = dict(semi_train_cfg=dict(lambda_cons=lambda_cons, kpt_cutout_num=kpt_cutout_num))
train_dataloader = dict(sampler=dict(source_ratio=_base_.control_source_ratio))
