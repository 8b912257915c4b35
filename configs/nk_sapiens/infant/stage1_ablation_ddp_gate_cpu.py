# Ablation +DDP+gate (CPU-size): +DDP with the Hybrid gate of ./_base_/hybrid_gate.py and no
# CMGC, so the gate's effect (against +DDP) is measured without the geometric teacher.
_base_ = ['./stage1_ablation_ddp_cpu.py', './_base_/hybrid_gate.py']

cons_target = _base_.gate_cons_target
model = dict(
    consistency_loss=dict(target=cons_target),
    gate=dict(_delete_=True, **_base_.hybrid_gate))
