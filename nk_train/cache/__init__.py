"""The geometric cache: one Zarr schema, fingerprint, manifest, writer and reader shared by
``precompute/geo_cache.py``, ``tools/check_cache.py`` and Stage1's ``LoadGeoCacheMaps``."""
from .check import Problem, check_split_cache
from .fingerprint import (cache_differences, diff_inputs, fingerprint, fingerprint_inputs,
                          split_fingerprint_inputs)
from .instances import Instance, InstanceList, list_instances
from .layout import FORMAT_VERSION
from .lock import CacheLock, CacheLockedError
from .manifest import ManifestError, load_manifest
from .reader import (GeoCacheMismatchError, GeoCacheReader, GeoMaps, IncompleteCacheError,
                     StaleCacheError)
from .settings import GeoCacheSettings
from .shard_reader import ChunkChecksumError, ShardFileError

__all__ = [
    'Problem', 'check_split_cache', 'cache_differences', 'diff_inputs', 'fingerprint',
    'fingerprint_inputs', 'split_fingerprint_inputs', 'Instance', 'InstanceList',
    'list_instances', 'FORMAT_VERSION', 'CacheLock', 'CacheLockedError', 'ManifestError',
    'load_manifest', 'GeoCacheMismatchError', 'GeoCacheReader', 'GeoMaps',
    'IncompleteCacheError', 'StaleCacheError', 'GeoCacheSettings', 'ChunkChecksumError',
    'ShardFileError'
]
