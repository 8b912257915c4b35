"""``manifest.json`` of a split cache and the record journal that fills it.

Why a journal: rewriting the whole manifest after every shard (format version 1) made the
coordinator's work per shard grow with the number of shards, quadratic in total (4.8 MB
rewritten per shard after 5,800 shards). Now a finished shard costs the coordinator one small
file, ``records/<j>.json``, written atomically (temporary file + ``os.replace``), whatever the
size of the cache; when every shard has a record, ``fold_records`` writes every record into
``records.jsonl`` and what readers need of them into two ``.npy`` tables (``RecordTable``),
then the final manifest once (the image table, the three files' sha256 and size, ``complete:
true``; one atomic replace is the switch from unfinished to finished), and removes
``records/``. The manifest itself holds nothing per shard, so opening a cache and the quick
check cost the same at 200 or 20,000 shards; only ``--full`` reads ``records.jsonl``. One
file per record rather than an
append-only journal file: a record is whole or absent after any kill (no torn last line to
repair), ``--resume`` finds the missing shards with one directory listing, and nothing is
ever rewritten. MosaicML streaming keeps per-shard hashes in its index the same way.

Guarantees (all for a killed process; shard files are not fsync'd, so a power loss can leave a
record whose file content did not reach the disk: ``tools/check_cache.py --full`` finds it):
a record is written only after its task has written and hashed the shard's files; a cache is
complete only when every shard has a record; a kill at any moment leaves either the unfinished
manifest with whole records, or the finished manifest (plus a ``records/`` left to delete);
``--resume`` recomputes exactly the shards without a record, byte for byte. One precompute run
at a time (``lock.py``).

Schema (``format_version`` 4)::

    format, format_version, split, fingerprint, fingerprint_inputs,
    layout: {num_instances, num_seeds, num_rows, rows_per_shard, num_shards, map_size,
             arrays: {name: {row_shape, dtype}}, blosc, chunk_checksum}
    sample_ids: [id of instance n, n = 0..N-1]
    excluded: [[annotation id, reason], ...]   (dropped by the dataset's filtering rules)
    complete: bool, created, updated
    and once complete:
    images: {file name: [sha256, size, mtime_ns]}
    record_files: {records | shard_table | row_table: {path, sha256, size}}
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .fingerprint import fingerprint, images_summary
from .layout import (FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, RECORD_FILES, RECORDS_DIR,
                     shard_ranges, stray_partial_files)
from .records import (RECORD_KEYS, ROW_TABLE_DTYPE, SHARD_TABLE_DTYPE, RecordTable,
                      record_problem)


class ManifestError(RuntimeError):
    """The manifest or a record is missing, unreadable or of another format."""


def manifest_path(split_dir: Path) -> Path:
    return Path(split_dir) / MANIFEST_NAME


def records_dir(split_dir: Path) -> Path:
    return Path(split_dir) / RECORDS_DIR


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, replaced
    atomically; a failed write (disk full, read-only) leaves no temporary behind.
    ``durable`` also fsyncs the file before the switch."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any, durable: bool = True) -> None:
    text = json.dumps(obj, indent=1 if durable else None, sort_keys=True, allow_nan=False)
    write_bytes_atomic(path, text.encode(), durable)


def _now() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%S%z')


def load_manifest(split_dir: Path) -> dict[str, Any]:
    path = manifest_path(split_dir)
    if not path.is_file():
        raise ManifestError(f'no cache manifest at {path}: run precompute/geo_cache.py first')
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f'cannot read cache manifest {path}: {err}') from err
    if manifest.get('format') != FORMAT_NAME or manifest.get('format_version') != FORMAT_VERSION:
        raise ManifestError(
            f'{path}: format {manifest.get("format")!r} v{manifest.get("format_version")}, '
            f'expected {FORMAT_NAME!r} v{FORMAT_VERSION}; rebuild with --overwrite')
    return manifest


def new_manifest(split: str, fp: str, inputs: dict, layout: dict, sample_ids: list[int],
                 excluded: list) -> dict[str, Any]:
    now = _now()
    return dict(format=FORMAT_NAME, format_version=FORMAT_VERSION, split=split,
                fingerprint=fp, fingerprint_inputs=inputs, layout=layout,
                sample_ids=[int(i) for i in sample_ids],
                excluded=[[int(i), str(r)] for i, r in excluded],
                complete=False, created=now, updated=now)


def write_record(split_dir: Path, shard: int, record: Mapping[str, Any]) -> None:
    """Journal shard ``shard``'s record (its task has written and hashed the files)."""
    rec = {k: record[k] for k in (*RECORD_KEYS, 'images')}
    folder = records_dir(split_dir)
    folder.mkdir(exist_ok=True)
    write_json_atomic(folder / f'{shard}.json', rec, durable=False)


def journal_shard_ids(split_dir: Path) -> list[int]:
    """Shards with a record file (one directory listing, nothing parsed)."""
    folder = records_dir(split_dir)
    if not folder.is_dir():
        return []
    return sorted(int(p.name[:-5]) for p in os.scandir(folder)
                  if p.name.endswith('.json') and p.name[:-5].isdigit())


def read_journal(split_dir: Path) -> dict[str, dict[str, Any]]:
    """All records of an unfinished cache, by shard."""
    out = {}
    for j in journal_shard_ids(split_dir):
        path = records_dir(split_dir) / f'{j}.json'
        try:
            out[str(j)] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ManifestError(f'cannot read shard record {path}: {err}; delete it (its shard '
                                'is then recomputed by --resume)') from err
    return out


def shard_records(split_dir: Path, manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every record of a cache: ``records.jsonl`` once complete, the journal before."""
    if not manifest['complete']:
        return read_journal(split_dir)
    data = _record_file_bytes(split_dir, manifest, 'records')
    return {str(rec['rows'][0] // manifest['layout']['rows_per_shard']): rec
            for rec in map(json.loads, data.splitlines())}


def load_record_table(split_dir: Path, manifest: Mapping[str, Any]) -> RecordTable:
    """The record table of a complete cache, each file checked against its size and sha256
    in the manifest and its shape against the layout."""
    layout = manifest['layout']
    tables = {}
    for kind, dtype, length in (('shard_table', SHARD_TABLE_DTYPE, layout['num_shards']),
                                ('row_table', ROW_TABLE_DTYPE, layout['num_rows'])):
        data = _record_file_bytes(split_dir, manifest, kind)
        table = np.load(io.BytesIO(data), allow_pickle=False)
        if table.dtype != dtype or table.shape != (length,):
            raise ManifestError(f'{split_dir / RECORD_FILES[kind]}: {table.shape} {table.dtype},'
                                f' expected ({length},) {dtype}; rebuild with --overwrite')
        tables[kind] = table
    return RecordTable.from_tables(**tables)


def _record_file_bytes(split_dir: Path, manifest: Mapping[str, Any], kind: str) -> bytes:
    entry = manifest.get('record_files', {}).get(kind)
    path = Path(split_dir) / RECORD_FILES[kind]
    if entry is None:
        raise ManifestError(f'{manifest_path(split_dir)} says complete but names no {kind} '
                            'file (edited by hand?); rebuild with --overwrite')
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ManifestError(f'cannot read {path}: {err}; rebuild with --overwrite') from err
    if len(data) != entry['size'] or hashlib.sha256(data).hexdigest() != entry['sha256']:
        raise ManifestError(f'{path} is not the file the manifest recorded ({len(data)} bytes, '
                            f'recorded {entry["size"]}; or its sha256 differs): replaced or '
                            'damaged; rebuild with --overwrite')
    return data


def record_file_problems(split_dir: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Size problems of the three record files (a ``stat`` each: the quick check)."""
    problems = []
    for kind, name in RECORD_FILES.items():
        entry = manifest.get('record_files', {}).get(kind)
        path = Path(split_dir) / name
        size = path.stat().st_size if path.is_file() else None
        if entry is None:
            problems.append(f'the manifest names no {kind} file ({name}; edited by hand?)')
        elif size != entry['size']:
            problems.append(f'{name}: {"missing" if size is None else f"{size} bytes"}, the '
                            f'manifest records {entry["size"]} bytes')
    return problems


def missing_shards(layout: Mapping[str, Any], records: Mapping[str, Any]) -> list[int]:
    """Shards without a usable record (one whose row range matches the layout)."""
    ranges = shard_ranges(layout['num_rows'], layout['rows_per_shard'])
    return [j for j, rows in enumerate(ranges)
            if record_problem(records.get(str(j)), rows) is not None]


def journal_images(records: Mapping[str, Mapping[str, Any]]) -> dict[str, list]:
    """The image table of the records: file name -> [sha256, size, mtime_ns]. Refuses an
    image two shards saw with different bytes (it changed during the run)."""
    table: dict[str, list] = {}
    seen_in: dict[str, str] = {}
    for j in sorted(records, key=int):
        if 'images' not in records[j]:
            raise ManifestError(f'shard record {j} lists no images; delete it and run --resume')
        for name, entry in records[j]['images'].items():
            if name in table and table[name][0] != entry[0]:
                raise ManifestError(
                    f'image {name} changed during the run: shard {seen_in[name]} was computed '
                    f'from sha256 {table[name][0][:12]}..., shard {j} from {entry[0][:12]}...; '
                    'rebuild with --overwrite')
            table.setdefault(name, list(entry))
            seen_in.setdefault(name, j)
    return table


def fold_records(split_dir: Path, manifest: Mapping[str, Any],
                 records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Write the record files, then the finished manifest (their hashes, the image table, the
    fingerprint covering the images) in one atomic replace; the caller then deletes the
    journal (``remove_journal``). Every shard must have a record."""
    layout = manifest['layout']
    missing = missing_shards(layout, records)
    if missing:
        raise ManifestError(f'{split_dir}: cannot finish, {len(missing)} shards have no record')
    images = journal_images(records)
    inputs = dict(manifest['fingerprint_inputs'], images=images_summary(images))
    lines = [json.dumps({k: records[str(j)][k] for k in RECORD_KEYS}, sort_keys=True,
                        allow_nan=False) for j in range(layout['num_shards'])]
    table = RecordTable.from_records(records, layout['num_rows'], layout['num_shards'])
    contents = {'records': ('\n'.join(lines) + '\n').encode()}
    for kind, array in table.to_tables().items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        contents[kind] = buffer.getvalue()
    record_files = {}
    for kind, data in contents.items():
        write_bytes_atomic(Path(split_dir) / RECORD_FILES[kind], data)
        record_files[kind] = dict(path=RECORD_FILES[kind], size=len(data),
                                  sha256=hashlib.sha256(data).hexdigest())
    final = dict(manifest, fingerprint_inputs=inputs, fingerprint=fingerprint(inputs),
                 images=images, record_files=record_files, complete=True, updated=_now())
    write_json_atomic(manifest_path(split_dir), final)
    return final


def remove_journal(split_dir: Path) -> None:
    if records_dir(split_dir).is_dir():
        shutil.rmtree(records_dir(split_dir))


def leftovers(split_dir: Path, manifest: Mapping[str, Any], deep: bool = True) -> list[Path]:
    """Files of interrupted writes: temporaries (zarr's beside chunk files only if ``deep``,
    see ``stray_partial_files``), the journal of a finished cache, the record files of a
    fold killed before its manifest."""
    found = stray_partial_files(split_dir, deep)
    if manifest['complete'] and records_dir(split_dir).exists():
        found.append(records_dir(split_dir))
    if not manifest['complete']:
        found += [p for p in (Path(split_dir) / n for n in RECORD_FILES.values()) if p.exists()]
    return found
