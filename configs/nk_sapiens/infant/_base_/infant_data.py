# Where the infant data lives and how its splits are named. Every NK-Sapiens config (Stage0,
# Stage1, the geometric cache) inherits this file, so paths are written once.
# Paths are relative to the working directory, as in every OpenMMLab config: the repo root,
# where `data/` links to the shared data, or `pose/` of a Sapiens checkout with the same link.
# On a cluster, link `data/` to the data there or edit this one file: the dataloaders copy
# these values when the configs are parsed, so --cfg-options data_root=... would not reach them.
data_root = 'data/'
dataset_type = 'CheckedCocoDataset'  # mmpose's CocoDataset, refusing defective files
data_mode = 'topdown'
# The keypoint set / skeleton, resolved relative to this file so the configs also work from
# a Sapiens checkout's pose/tools/train.py.
dataset_info_file = '{{fileDirname}}/../../../_base_/datasets/infant_coco17.py'
metainfo = dict(from_file=dataset_info_file)

image_prefix = 'syrip/images/'
train_labeled_ann = 'syrip/annotations/train_labeled.json'
train_unlabeled_ann = 'syrip/annotations/train_unlabeled.json'
# Test100: evaluated once per final checkpoint (tools/test.py), never for selection or tuning.
test_ann = 'syrip/annotations/val_test100.json'
# Detector boxes for top-down testing; None = use the ground-truth boxes of test_ann.
test_bbox_file = None
# The validation split, carved from train_labeled by tools/make_val_split.py (committed): its
# 'val' part chooses checkpoints and every tuned setting, its 'train' part is all that trains
# (configs, KPS statistics, ddp_prior). Relative to the NK-Sapiens checkout (nk_train.paths).
labeled_split_file = 'stats/splits/syrip_labeled.json'
train_split = dict(file=labeled_split_file, part='train')
val_split = dict(file=labeled_split_file, part='val')
