# The Hybrid gate of the full method, shared by stage1_ssl_full.py and its CPU variant (a second
# base beside their ablation parent). Per unlabeled sample, Teacher A's hard pseudo-label enters
# L_cons when its mean heatmap peak >= gate_thr_conf and the KPS of its keypoints
# >= gate_thr_kps (gate_cons_target: a Gaussian at its decoded keypoints instead of its
# heatmap); the other samples get L_dev from Teacher B (the ddp_prior).
# The KPS combines the limb-length term with the ddp_prior term (the largest correction the
# prior makes to the pose; it uses model.ddp_prior's checkpoint): on Test100 vs corrupted
# copies this pair separates best (benchmarks/results/kps_auroc.json: AUROC 0.90 for a joint
# displaced by 25% of the box, 0.77 infant vs adult poses) and ranks Teacher A's real
# pseudo-labels by their accuracy about as well as its confidence does (AUROC 0.84-0.86 for
# OKS >= 0.5, benchmarks/results/kps_pseudo_labels.json); the range-of-motion term is weaker on
# both, and confidence is already the gate's first condition. gate_thr_kps = 0.2 is the 5%
# quantile (0.203) of this KPS over the real poses of the validation part of train_labeled
# (benchmarks/results/kps_auroc_val.json, real_kps_distribution.len_prior; PROTOCOL.md §4).
gate_thr_conf = 0.5
gate_thr_kps = 0.2
gate_level = 'sample'  # or 'keypoint'
gate_cons_target = 'hard'
hybrid_gate = dict(type='HybridGate', thr_conf=gate_thr_conf, thr_kps=gate_thr_kps,
                   level=gate_level,
                   kps=dict(type='KinematicPlausibilityScore',
                            stats_file='stats/skeleton_stats.json',
                            weights=dict(len=1.0, prior=1.0)))
