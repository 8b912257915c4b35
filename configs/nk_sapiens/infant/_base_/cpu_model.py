# The CPU-size pose model and its pipelines, in one place for stage0_supervised_cpu.py and
# stage1_ssl_baseline_cpu.py (a CPU Stage0 checkpoint must fit the CPU Stage1 student): a
# 4-layer ViT trained from scratch at 128 x 96 input (heatmaps 24 x 32) and the milder
# geometric augmentation that such a model needs to learn within a CPU budget (why: see
# stage0_supervised_cpu.py). Under cpu_* names, so that a CPU config can take this file as a
# second base beside its full-size parent (two bases may not share keys) and apply it with
# `codec = _base_.cpu_codec` and so on.
cpu_embed_dim = 192
cpu_num_layers = 4
cpu_image_size = [96, 128]  # width, height
cpu_heatmap_size = [24, 32]
cpu_sigma = 2
cpu_head_channels = (128, 128)

cpu_codec = dict(type='UDPHeatmap', input_size=cpu_image_size, heatmap_size=cpu_heatmap_size,
                 sigma=cpu_sigma)
# Overrides of the parent's backbone / head (the rest of Sapiens' ViT and HeatmapHead stays).
cpu_backbone = dict(
    arch=dict(_delete_=True, embed_dims=cpu_embed_dim, num_layers=cpu_num_layers, num_heads=3,
              feedforward_channels=cpu_embed_dim * 4),
    img_size=(cpu_image_size[1], cpu_image_size[0]))
cpu_head = dict(
    in_channels=cpu_embed_dim,
    deconv_out_channels=cpu_head_channels,
    conv_out_channels=cpu_head_channels,
    decoder=cpu_codec)

cpu_train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', rotate_factor=30.0, scale_factor=(0.75, 1.25)),
    dict(type='TopdownAffine', input_size=cpu_codec['input_size'], use_udp=True),
    dict(type='GenerateTarget', encoder=cpu_codec),
    dict(type='PackPoseInputs'),
]
cpu_val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=cpu_codec['input_size'], use_udp=True),
    dict(type='PackPoseInputs'),
]
