# Full NK-Sapiens (CPU-size): +DDP+CMGC with the Hybrid gate. Per unlabeled sample, Teacher A's
# hard pseudo-label enters L_cons when its mean heatmap peak >= gate_thr_conf and the KPS of
# its keypoints >= gate_thr_kps; the other samples get L_dev from Teacher B (the ddp_prior).
# The KPS uses the limb-length term only: it separates infant from adult poses
# (benchmarks/results/kps_auroc.json: AUROC 0.67), the range-of-motion term does not (0.26),
# and confidence is already the gate's first condition.
_base_ = ['./stage1_ablation_ddp_cmgc_cpu.py']

gate_thr_conf = 0.5
gate_thr_kps = 0.1
gate_level = 'sample'  # or 'keypoint'
cons_target = 'hard'
model = dict(
    consistency_loss=dict(target=cons_target),
    gate=dict(_delete_=True, type='HybridGate', thr_conf=gate_thr_conf, thr_kps=gate_thr_kps,
              level=gate_level,
              kps=dict(type='KinematicPlausibilityScore',
                       stats_file='stats/skeleton_stats.json',
                       weights=dict(conf=0.0, len=1.0, rom=0.0))))
