# The CPU-size overrides of the geometric cache settings (./geo_cache.py), in one place: the
# STAND-IN teacher (seeded random weights, no meaning) at a small teacher input, the CPU crop
# (96 x 128) and its heatmap grid (24 x 32). Under their own name, so that every CPU config can
# take this file as a second base (two bases may not share keys) and apply them with
# `geo_cache = _base_.cpu_geo_cache`.
cpu_geo_cache = dict(
    root='cache/geo_cpu',
    input_size=(96, 128),
    map_size=(24, 32),
    rows_per_shard=16,
    batch_size=8,
    prep_threads=1,
    # Relative depth with a -1 background and half-resolution normals, like Sapiens' models:
    # the foreground comes from that background (there is no stand-in segmentation model).
    teacher=dict(_delete_=True, kind='stand_in', seed=0, width=16, num_layers=3,
                 input_size=(256, 192), mean=(123.5, 116.5, 103.5), std=(58.5, 57.0, 57.5),
                 bgr_to_rgb=True, dtype='auto', foreground=dict(source='depth', below=0.0),
                 normal_axes=('right', 'down', 'away')),
)
