# The equal-compute control of every Stage1 row: Stage0 continued on labeled crops only, with
# everything else exactly as in Stage1 (the Stage0 checkpoint it starts from, schedule,
# optimiser, EMA teacher and its evaluation). Each batch holds as many labeled crops as a
# Stage1 batch holds crops in all (labeled + unlabeled), so the student makes as many
# forward/backward passes per iteration; no unlabeled term is computed.
_base_ = ['./stage1_ssl_baseline.py']

lambda_cons = 0.0
model = dict(semi_train_cfg=dict(lambda_cons=lambda_cons))
train_dataloader = dict(sampler=dict(source_ratio=[1, 0]))
