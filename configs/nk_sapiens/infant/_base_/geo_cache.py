# The offline geometric cache: depth/normal maps of the frozen Sapiens teacher for K fixed views
# (SeededTopdownAffine, k = 0 is the un-augmented crop) of every instance, stored in Zarr under
# `root/<split>/`. Built by `python precompute/geo_cache.py --split SPLIT --config CONFIG`,
# checked by `python tools/check_cache.py`, read in Stage1 by LoadGeoCacheMaps. Stage1 configs
# inherit this file and pass `geo_cache` to SeededTopdownAffine / LoadGeoCacheMaps, so training
# and precompute read the same dict: that is how a stale cache is detected (its fingerprint).
# `root` and the teacher files are relative to the NK-Sapiens checkout (nk_train/paths.py), so
# precompute and training find the same cache from any working directory; the data paths are
# copied from infant_data.py when this file is parsed (relative to the working directory): to
# move the data, override geo_cache.data_root (not only data_root) with --cfg-options.
_base_ = ['./infant_data.py']

geo_cache_num_seeds = 4  # K views per training instance; test100 uses k = 0 only

geo_cache = dict(
    root='cache/geo',
    data_root=_base_.data_root,
    image_prefix=_base_.image_prefix,
    global_seed=20261124,
    # Student crop (w, h) = Stage1's input size, and the padding of GetBBoxCenterScale.
    input_size=(768, 1024),
    bbox_padding=1.25,
    min_bbox_size=2.0,
    # Cached map grid (w, h): the heatmap grid the CMGC losses sample (input / 4), UDP-aligned.
    map_size=(192, 256),
    aug=dict(flip_prob=0.5, shift_factor=0.16, shift_prob=0.3, scale_factor=(0.75, 1.25),
             scale_prob=1.0, rotate_factor=30.0, rotate_prob=0.6),
    # Measured choice (benchmarks/results/geo_cache.json): float16 depth, int8 normals.
    depth_dtype='float16',
    normal_encoding='int8',
    rows_per_shard=256,
    batch_size=16,  # a multiple of K: each image is decoded once per batch
    # Decode/crop threads per GPU worker: one crop's decode + warp costs a CPU core about as
    # long as the teacher's GPU pass (benchmarks/results/geo_cache.json), so the GPU needs
    # several preparing cores to stay busy.
    prep_threads=4,
    blosc=dict(cname='zstd', clevel=3, shuffle='bitshuffle'),
    # Sapiens-Lite files: TorchScript (float32) or kind='export' for the *_bfloat16.pt2 files
    # (the dtype each file runs in is read from it: dtype='auto').
    teacher=dict(
        kind='torchscript',
        depth='checkpoints/sapiens_lite/depth/sapiens_0.3b_render_people_epoch_100_torchscript.pt2',
        normal='checkpoints/sapiens_lite/normal/'
        'sapiens_0.3b_normal_render_people_epoch_66_torchscript.pt2',
        # The foreground mask: Sapiens' body-part segmentation (class 0 = background), as
        # Sapiens' own depth/normal demos mask their outputs. Its depth model leaves the
        # background unsupervised, so source='depth' (depth < below = background) only suits
        # a depth model known to output Sapiens' -1 background.
        segmentation='checkpoints/sapiens_lite/seg/'
        'sapiens_0.3b_goliath_best_goliath_mIoU_7673_epoch_194_torchscript.pt2',
        foreground=dict(source='segmentation', background_classes=[0]),
        # Which image directions the normal model's x, y, z point to (the loss frame: right,
        # down, away; Sapiens' depth-to-normal demo uses it, its normal model is unverified).
        normal_axes=('right', 'down', 'away'),
        input_size=(1024, 768),  # (h, w)
        mean=(123.5, 116.5, 103.5),
        std=(58.5, 57.0, 57.5),
        bgr_to_rgb=True,
        dtype='auto'),
    splits=dict(
        labeled=dict(ann_file=_base_.train_labeled_ann, num_seeds=geo_cache_num_seeds,
                     require_keypoints=True),
        unlabeled=dict(ann_file=_base_.train_unlabeled_ann, num_seeds=geo_cache_num_seeds,
                       require_keypoints=False),
        test100=dict(ann_file=_base_.test_ann, num_seeds=1, require_keypoints=True)),
)
