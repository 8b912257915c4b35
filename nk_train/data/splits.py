"""Parts of a labeled COCO file named by a split file (``tools/make_val_split.py``).

A split file lists, per part (``train``, ``val``), the image and annotation ids it holds,
with the sha256 of the annotation file it was drawn from. Datasets, the metric, the KPS
statistics and the ddp_prior read their part through ``SplitPart``: a file that does not
match the annotation file it is applied to (another file, an edited one) is refused, so a
split can never silently select the wrong images.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..paths import require_project_file
from ..utils import sha256_file

SPLIT_FORMAT = 'nk-sapiens-split/1'


@dataclass(frozen=True)
class SplitPart:
    """One part of a split: its image and annotation ids."""

    file: str
    part: str
    image_ids: frozenset[int]
    annotation_ids: frozenset[int]

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], ann_file: str | Path) -> 'SplitPart':
        """``dict(file=..., part=...)`` applied to ``ann_file`` (checked against its hash).
        ``file`` relative: inside the NK-Sapiens checkout (nk_train.paths)."""
        unknown = set(cfg) - {'file', 'part'}
        if unknown or 'file' not in cfg or 'part' not in cfg:
            raise ValueError(f'split must be dict(file=..., part=...), got {dict(cfg)}')
        path = require_project_file(cfg['file'], 'split file',
                                    'Make it with tools/make_val_split.py.')
        split = json.loads(path.read_text())
        if split.get('format') != SPLIT_FORMAT:
            raise ValueError(f'{path}: not a split file of format {SPLIT_FORMAT!r}')
        if cfg['part'] not in split['parts']:
            raise ValueError(f'{path}: no part {cfg["part"]!r}; parts: {sorted(split["parts"])}')
        digest = sha256_file(ann_file)
        if digest != split['source_sha256']:
            raise ValueError(f'{path} was drawn from {split["source"]} (sha256 '
                             f'{split["source_sha256"][:12]}), not from {ann_file} (sha256 '
                             f'{digest[:12]}): remake it with tools/make_val_split.py')
        part = split['parts'][cfg['part']]
        return cls(file=str(path), part=cfg['part'],
                   image_ids=frozenset(int(i) for i in part['image_ids']),
                   annotation_ids=frozenset(int(i) for i in part['annotation_ids']))

    def select(self, coco: dict) -> dict:
        """A copy of a COCO dict restricted to this part's images and annotations."""
        return dict(coco,
                    images=[i for i in coco['images'] if int(i['id']) in self.image_ids],
                    annotations=[a for a in coco['annotations']
                                 if int(a['id']) in self.annotation_ids])


def labeled_part(ann_file: str | Path, split_file: str | Path | None, part: str,
                 tmp_dir: str | Path) -> tuple[Path, dict | None]:
    """The annotation file a tool should read for ``part`` of ``split_file`` (a copy holding
    only that part, under ``tmp_dir``), and what to record about the split; ``split_file=None``
    means the whole file."""
    if split_file is None:
        return Path(ann_file), None
    chosen = SplitPart.from_config(dict(file=str(split_file), part=part), ann_file)
    out = Path(tmp_dir) / f'{Path(ann_file).stem}.{part}.json'
    out.write_text(json.dumps(chosen.select(json.loads(Path(ann_file).read_bytes()))))
    split = json.loads(Path(chosen.file).read_text())
    return out, dict(file=str(split_file), part=part, sha256=sha256_file(chosen.file),
                     source_sha256=split['source_sha256'])
