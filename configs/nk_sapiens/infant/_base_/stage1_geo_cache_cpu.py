# The full Stage1 baseline on the CPU geometric cache (./geo_cache_cpu_overrides.py): the first
# step of ../stage1_ssl_baseline_cpu.py, in a file of its own because mmengine merges a file's
# dicts into its parent's only after the file has run. As this file's child, the CPU baseline
# reads the merged CPU cache in `_base_.geo_cache` and can hand whole copies of it to the
# pipeline steps that read the cache.
_base_ = ['../stage1_ssl_baseline.py', './geo_cache_cpu_overrides.py']

geo_cache = _base_.cpu_geo_cache
model = dict(geo_cache=geo_cache)
