# Ablation +DDP (CPU-size): ./_base_/stage1_variants.py's +DDP (L_dev) on the baseline.
_base_ = ['./stage1_ssl_baseline_cpu.py', './_base_/stage1_variants.py']

lambda_dev = _base_.ddp_lambda_dev
model = dict(semi_train_cfg=dict(lambda_dev=lambda_dev))
