# Ablation +DDP+CMGC (CPU-size): +CMGC plus L_dev on every unlabeled sample (no gating).
_base_ = ['./stage1_ablation_cmgc_cpu.py']

lambda_dev = 0.1  # L_dev is in (fraction of the heatmap size)^2: a first guess, not tuned
model = dict(semi_train_cfg=dict(lambda_dev=lambda_dev))
