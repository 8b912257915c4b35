# CPU-size geometric cache (the overrides of ./geo_cache_cpu_overrides.py: the STAND-IN teacher,
# the CPU crop and its heatmap grid), so precompute, checks and the Stage1 reader run on this
# machine. The full recipe is in geo_cache.py.
_base_ = ['./geo_cache.py', './geo_cache_cpu_overrides.py']

geo_cache = _base_.cpu_geo_cache
