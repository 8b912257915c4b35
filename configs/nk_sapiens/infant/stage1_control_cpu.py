# CPU-size equal-compute control: stage1_control.py's two changes on the CPU baseline.
_base_ = ['./stage1_ssl_baseline_cpu.py']

lambda_cons = 0.0
model = dict(semi_train_cfg=dict(lambda_cons=lambda_cons))
train_dataloader = dict(sampler=dict(source_ratio=[1, 0]))
