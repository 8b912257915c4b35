"""The cache fingerprint: sha256 of the canonical JSON of everything that decides its contents.

Like Hugging Face datasets' fingerprints, but the inputs are stored next to the hash, so a
mismatch can say *what* changed ("aug.rotate_factor: cache 30.0, config 20.0") instead of only
that something did. Layout choices that do not change values (rows per shard, compressor) are
not fingerprint inputs.

The image files are inputs too, but their hashes are only known once the tasks have read them
(``images.py``): a finished cache's inputs gain ``images: {count, sha256}`` (the digest of its
image table) when precompute folds the records, and its fingerprint is recomputed then. So two
caches built from the same config but different image bytes have different fingerprints, and
``cache_differences`` names each image that changed.

The code that computes the values is an input as well (``source_digest`` of each module that
does, listed by ``nk_train.cmgc.cache_inputs``): an edit to the crop geometry or the map
resampling makes every older cache stale, naming the module.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .images import current_images, image_differences
from .instances import InstanceList
from .layout import FORMAT_VERSION
from .settings import GeoCacheSettings


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII, tuples as lists."""
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=True,
                      allow_nan=False)


def fingerprint(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(inputs).encode('ascii')).hexdigest()


def ids_sha256(sample_ids: Iterable[int]) -> str:
    return hashlib.sha256(canonical_json([int(i) for i in sample_ids]).encode()).hexdigest()


def images_summary(table: Mapping[str, list]) -> dict[str, Any]:
    """The fingerprint input of an image table: its size and the digest of (name, sha256)."""
    pairs = [[name, table[name][0]] for name in sorted(table)]
    return dict(count=len(pairs),
                sha256=hashlib.sha256(canonical_json(pairs).encode()).hexdigest())


IMAGE_KEYS = ('images.count', 'images.sha256')


def code_digests(modules: Sequence[str]) -> dict[str, str]:
    """``{module name: source_digest of its file}`` of the named modules."""
    return {name: source_digest(importlib.import_module(name).__file__) for name in modules}


@lru_cache(maxsize=None)
def source_digest(path: str) -> str:
    """sha256 of a Python file's code as parsed: its AST without docstrings, so comments,
    docstrings and formatting do not count, and every statement and constant does. (The AST's
    form can change between Python minor versions: precompute and training share one
    environment.)"""
    tree = ast.parse(Path(path).read_text(), filename=path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def fingerprint_inputs(settings: GeoCacheSettings, split: str, instances: InstanceList,
                       teacher_desc: Mapping[str, Any], code: Mapping[str, str]
                       ) -> dict[str, Any]:
    """The fingerprint inputs of one split's cache (JSON-able): ``teacher_desc`` identifies
    the teacher, ``code`` the source of what computes the values (``nk_train.cmgc.cache_inputs``
    assembles both)."""
    sp = settings.split(split)
    subset = instances.subset
    return json.loads(canonical_json(dict(
        format_version=FORMAT_VERSION,
        teacher=dict(teacher_desc),
        code=dict(code),
        crop=dict(input_size=list(settings.input_size), bbox_padding=settings.bbox_padding,
                  min_bbox_size=settings.min_bbox_size),
        aug=settings.aug.to_dict(),
        num_seeds=sp.num_seeds,
        global_seed=settings.global_seed,
        maps=dict(size=list(settings.map_size), depth_dtype=settings.depth_dtype,
                  normal_encoding=settings.normal_encoding),
        annotations=dict(sha256=instances.ann_sha256,
                         require_keypoints=instances.require_keypoints,
                         subset=list(subset) if isinstance(subset, tuple) else subset,
                         num_instances=len(instances),
                         sample_ids_sha256=ids_sha256(instances.sample_ids)),
    )))


def flatten_dict(obj: Any, prefix: str = '') -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1} (leaves are kept as they are, lists included)."""
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten_dict(v, f'{prefix}{k}.'))
        return out
    return {prefix[:-1]: obj}


def diff_inputs(cached: Mapping[str, Any], current: Mapping[str, Any],
                ignore: Iterable[str] = ()) -> list[str]:
    """Human-readable differences ``key: cache X, config Y`` (empty = same)."""
    a, b = flatten_dict(cached), flatten_dict(current)
    skip = set(ignore)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key in skip:
            continue
        if key not in a:
            lines.append(f'{key}: absent in cache, config {b[key]!r}')
        elif key not in b:
            lines.append(f'{key}: cache {a[key]!r}, absent in config')
        elif a[key] != b[key]:
            lines.append(f'{key}: cache {a[key]!r}, config {b[key]!r}')
    return lines


def cache_differences(manifest: Mapping[str, Any], inputs: Mapping[str, Any],
                      instances: InstanceList, ignore: Iterable[str] = (),
                      recorded_images: Mapping[str, list] | None = None,
                      rehash_images: bool = False) -> list[str]:
    """Why the cache of ``manifest`` is not the one the config (``inputs``) and the image files
    of ``instances`` describe now (empty = it is). ``recorded_images`` defaults to the
    manifest's table (a finished cache); precompute passes the images of the records so far."""
    cached = manifest['fingerprint_inputs']
    lines = []
    if fingerprint(cached) != manifest['fingerprint']:
        lines.append("fingerprint: does not match the manifest's own inputs (edited by hand?)")
    if recorded_images is None:
        recorded_images = manifest.get('images') or {}
        if 'images' in manifest and images_summary(recorded_images) != cached.get('images'):
            lines.append("images: the manifest's image table does not match its fingerprint "
                         '(edited by hand?)')
    lines += diff_inputs(cached, inputs, [*ignore, *IMAGE_KEYS])
    lines += image_differences(recorded_images,
                               *current_images(instances, recorded_images, rehash_images))
    return lines
