"""Check a geometric cache split against a training config.

    python tools/check_cache.py --config CONFIG --split SPLIT [--files | --full]
        [--indices I ... | --limit N] [--depth-range LO HI] [--cfg-options key=value ...]

Quick mode (nothing per shard, so near-constant in the number of shards): manifest, layout,
fingerprint against the config's ``geo_cache`` dict (naming every changed input), the image
files (size and mtime, re-hashed when they differ; naming every changed image),
completeness, the record files against their recorded sizes and hashes, no temporaries of
interrupted writes in the split directory or the record journal. ``--files`` also ``stat``s
every shard file (present, of its recorded size: finds truncated and 0-byte files; linear but
cheap, a few microseconds per file). ``--full`` (linear in the cache's size) does that, re-hashes every
shard file and image, compares every chunk checksum with its record, decodes every row
(CRC32C), counts NaN/Inf, checks the depth range and unit normals, compares the sample ids
with the dataset's, and looks for zarr's temporaries beside every chunk file.
Exit codes: 0 sound, 1 problems found (listed by shard/row/sample), 2 usage/config error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from mmengine.config import Config, DictAction  # noqa: E402

from nk_train.cache.check import check_split_cache  # noqa: E402
from nk_train.cmgc.cache_inputs import split_fingerprint_inputs  # noqa: E402
from nk_train.cache.settings import GeoCacheSettings  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--config', required=True, help='config holding the geo_cache dict')
    p.add_argument('--split', required=True)
    level = p.add_mutually_exclusive_group()
    level.add_argument('--files', action='store_true',
                       help='also stat every shard file (presence and recorded size)')
    level.add_argument('--full', action='store_true', help='decode and re-hash everything')
    subset = p.add_mutually_exclusive_group()
    subset.add_argument('--indices', type=int, nargs='+', help='the dataset subset used')
    subset.add_argument('--limit', type=int, help='the first N instances were used')
    p.add_argument('--depth-range', type=float, nargs=2, metavar=('LO', 'HI'),
                   help='flag rows whose depth leaves this range')
    p.add_argument('--normal-tol', type=float, default=0.02,
                   help='allowed deviation of |normal| from 1 (default 0.02)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
        settings = GeoCacheSettings.from_config(cfg['geo_cache'])
        indices = args.indices if args.indices is not None else args.limit
        inputs, unverifiable, instances = split_fingerprint_inputs(settings, args.split,
                                                                   indices)
    except (KeyError, ValueError, FileNotFoundError, IndexError) as err:
        print(f'ERROR: {err.args[0] if isinstance(err, KeyError) else err}', file=sys.stderr)
        return 2
    split_dir = settings.split_dir(args.split)
    problems = check_split_cache(
        split_dir, inputs, instances, files=args.files, full=args.full,
        ignore_keys=unverifiable,
        expected_ids=instances.sample_ids if args.full else None,
        depth_range=tuple(args.depth_range) if args.depth_range else None,
        normal_tol=args.normal_tol)
    mode = 'full' if args.full else 'files' if args.files else 'quick'
    for key in unverifiable:
        print(f'note: {key} not verified (teacher file absent here)')
    if problems:
        print(f'{split_dir}: {len(problems)} problem(s) ({mode} check):')
        for prob in problems:
            print(f'  {prob}')
        return 1
    print(f'{split_dir}: OK ({mode} check, {len(instances)} instances)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
