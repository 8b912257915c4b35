# Ablation +DDP+CMGC (full-size): +CMGC plus +DDP's L_dev on every unlabeled sample (no gating;
# its value is in ./_base_/stage1_variants.py, which the +CMGC config brings).
_base_ = ['./stage1_ablation_cmgc.py']

lambda_dev = _base_.ddp_lambda_dev
model = dict(semi_train_cfg=dict(lambda_dev=lambda_dev))
