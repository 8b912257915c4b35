# Full NK-Sapiens (full-size): +DDP+CMGC with the Hybrid gate of ./_base_/hybrid_gate.py
# (thresholds, KPS terms and why) and Teacher A's hard pseudo-labels.
_base_ = ['./stage1_ablation_ddp_cmgc.py', './_base_/hybrid_gate.py']

cons_target = 'hard'
model = dict(
    consistency_loss=dict(target=cons_target),
    gate=dict(_delete_=True, **_base_.hybrid_gate))
