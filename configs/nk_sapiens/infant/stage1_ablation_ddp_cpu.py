# Ablation +DDP (CPU-size): the baseline plus L_dev on every unlabeled sample (no gating;
# L_cons keeps the baseline's confidence filter). Teacher B = the ddp_prior at
# ddp_prior_checkpoint denoising the student's strong-view keypoints.
_base_ = ['./stage1_ssl_baseline_cpu.py']

lambda_dev = 0.1  # L_dev is in (fraction of the heatmap size)^2: a first guess, not tuned
model = dict(semi_train_cfg=dict(lambda_dev=lambda_dev))
