"""The keypoint set and skeleton, read from one mmpose ``dataset_info`` file.

KPS statistics, the CMGC losses, the diffusion prior's flip augmentation and the pose head
all need the same keypoint order, limb list and flip pairs. They get them from here, so the
skeleton is defined once (``configs/_base_/datasets/infant_coco17.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .paths import PROJECT_ROOT

DEFAULT_DATASET_INFO = PROJECT_ROOT / 'configs' / '_base_' / 'datasets' / 'infant_coco17.py'


@dataclass(frozen=True)
class Skeleton:
    """Keypoint names, limbs (index pairs), flip permutation and OKS sigmas."""

    source: str
    keypoint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    flip_indices: tuple[int, ...]
    sigmas: tuple[float, ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def edge_names(self) -> tuple[str, ...]:
        n = self.keypoint_names
        return tuple(f'{n[i]}-{n[j]}' for i, j in self.edges)

    def joint_angles(self) -> tuple[tuple[int, int, int], ...]:
        """Every (a, centre, b) where two skeleton edges meet at ``centre``.

        Ordered by centre index, then by the edges' order in ``dataset_info``, so the list
        (and every statistic keyed by it) is deterministic.
        """
        triples = []
        for c in range(self.num_keypoints):
            nbrs = [j if i == c else i for i, j in self.edges if c in (i, j)]
            for x in range(len(nbrs)):
                for y in range(x + 1, len(nbrs)):
                    triples.append((nbrs[x], c, nbrs[y]))
        return tuple(triples)


def _parse(path: Path) -> Skeleton:
    # mmpose's own parser resolves names to indices and flip pairs exactly as the
    # datasets and the head do.
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    meta = parse_pose_metainfo(dict(from_file=str(path)))
    names = tuple(meta['keypoint_id2name'][i] for i in range(meta['num_keypoints']))
    return Skeleton(
        source=str(path),
        keypoint_names=names,
        edges=tuple((int(a), int(b)) for a, b in meta['skeleton_links']),
        flip_indices=tuple(int(i) for i in meta['flip_indices']),
        sigmas=tuple(float(s) for s in meta['sigmas']),
    )


@lru_cache(maxsize=None)
def _load_cached(path: str) -> Skeleton:
    return _parse(Path(path))


def load_skeleton(dataset_info: str | Path | None = None) -> Skeleton:
    """Load the skeleton from a dataset_info file (default: the infant COCO-17 file)."""
    path = Path(dataset_info) if dataset_info is not None else DEFAULT_DATASET_INFO
    if not path.is_file():
        raise FileNotFoundError(f'dataset_info file not found: {path}')
    return _load_cached(str(path.resolve()))
