# What each Stage1 variant switches on, written once for both sizes. A variant's two configs
# (full-size and *_cpu.py) take this file as a second base beside their size's baseline and set
# their terms from it; the names are prefixed because a second base may not share a key with
# the baseline. The terms' "off" values are the baseline's (stage1_ssl_baseline.py), the Full
# method's gate is ./hybrid_gate.py.

# Control (stage1_control*.py): the equal-compute control of every Stage1 row, Stage0 continued
# on labeled crops only with everything else exactly as in Stage1 (the Stage0 checkpoint it
# starts from, schedule, optimiser, EMA teacher and its evaluation). Each batch holds as many
# labeled crops as a Stage1 batch holds crops in all (labeled + unlabeled), so the student makes
# as many forward/backward passes per iteration; no unlabeled term is computed.
control_source_ratio = [1, 0]  # labeled : unlabeled crops in each batch
control_lambda_cons = 0.0

# +DDP (stage1_ablation_ddp*.py; +DDP+CMGC and Full add it too): L_dev on every unlabeled sample
# (no gating; L_cons keeps the baseline's confidence filter). Teacher B = the ddp_prior at
# ddp_prior_checkpoint denoising the student's strong-view keypoints.
ddp_lambda_dev = 0.1  # L_dev is in (fraction of the heatmap size)^2: a first guess, not tuned

# +CMGC (stage1_ablation_cmgc*.py, the base of +DDP+CMGC and Full): the depth/normal consistency
# of the student's strong-view keypoints with the geometric cache. Its unlabeled crops are the
# baseline's cmgc_unlabeled_dataset, which reads the cached maps of each crop's (id, k) row;
# build the cache first:
#   python precompute/geo_cache.py --split unlabeled --config <the +CMGC config>
# With a subset of the unlabeled set (dataset indices), give LoadGeoCacheMaps the same indices:
# the cache of a subset is a different cache (its fingerprint).
cmgc_lambda_geo_depth = 1e-3  # first guesses, not tuned (see nk_train/cmgc/losses.py for scales)
cmgc_lambda_geo_normal = 1e-3
