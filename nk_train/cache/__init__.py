"""The geometric cache's storage: one Zarr schema, fingerprint, manifest, array writer, reader
and checks, shared by ``precompute/geo_cache.py``, ``tools/check_cache.py`` and Stage1's
``LoadGeoCacheMaps``. No model code: the teacher that computes the maps, and what a cache must
have been computed from, are in ``nk_train.cmgc`` (``cache_shard``, ``cache_inputs``)."""
from .check import Problem, check_split_cache
from .fingerprint import cache_differences, diff_inputs, fingerprint, fingerprint_inputs
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
    'fingerprint_inputs', 'Instance', 'InstanceList',
    'list_instances', 'FORMAT_VERSION', 'CacheLock', 'CacheLockedError', 'ManifestError',
    'load_manifest', 'GeoCacheMismatchError', 'GeoCacheReader', 'GeoMaps',
    'IncompleteCacheError', 'StaleCacheError', 'GeoCacheSettings', 'ChunkChecksumError',
    'ShardFileError'
]
