# Full NK-Sapiens (CPU-size): +DDP+CMGC with the Hybrid gate of ./_base_/hybrid_gate.py
# (thresholds, KPS terms, Teacher A's hard pseudo-labels, and why).
_base_ = ['./stage1_ablation_ddp_cmgc_cpu.py', './_base_/hybrid_gate.py']

cons_target = _base_.gate_cons_target
model = dict(
    consistency_loss=dict(target=cons_target),
    gate=dict(_delete_=True, **_base_.hybrid_gate))
