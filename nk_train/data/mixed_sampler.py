"""Batches that mix labeled and unlabeled crops in a fixed ratio (Stage1).

``SourceConcatDataset`` concatenates the sources (mmengine's ``ConcatDataset`` only takes
``BaseDataset`` instances, not wrappers such as ``SeededViewDataset``).
``MixedSourceSampler`` works on it like mmdet's ``MultiSourceSampler``: every
consecutive ``batch_size`` indices it yields form one batch holding exactly
``num_per_source[i]`` samples of source ``i``, in source order. Each source is an endless
stream of seeded permutations; under torch.distributed rank ``r`` of ``W`` takes stream
positions ``r, r + W, ...``, so the ranks see disjoint samples within a pass. All ranks
share one seed (mmengine passes the run seed, or ``sync_random_seed`` is used), and
``set_epoch`` changes the permutations.

The dataloader's ``batch_size`` must equal this sampler's ``batch_size`` (mmengine does not
pass it to samplers); the configs derive both from one variable.
"""
from __future__ import annotations

import copy
import itertools
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmpose.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import ConcatDataset, Sampler


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@DATASETS.register_module()
class SourceConcatDataset(ConcatDataset):
    """The training sources back to back (source i = ``datasets[i]``).

    Any dataset with a ``metainfo`` is accepted (configs are built from mmpose's registry).
    The sources must describe the same keypoints: their metainfo must agree on every key
    except ``ignore_keys``, as mmengine's ``ConcatDataset`` requires.
    """

    def __init__(self, datasets: Sequence[Any], ignore_keys: Sequence[str] = ()) -> None:
        built = [DATASETS.build(d) if isinstance(d, dict) else d for d in datasets]
        if not built:
            raise ValueError('SourceConcatDataset needs at least one dataset')
        for i, d in enumerate(built):
            if not hasattr(d, 'metainfo'):
                raise TypeError(f'SourceConcatDataset: source {i} ({type(d).__name__}) has no '
                                'metainfo')
        first = built[0].metainfo
        for i, d in enumerate(built[1:], 1):
            meta = d.metainfo
            for key in (first.keys() | meta.keys()) - set(ignore_keys):
                if key not in first or key not in meta or not _same(first[key], meta[key]):
                    raise ValueError(f'SourceConcatDataset: source {i} ({type(d).__name__}) '
                                     f'disagrees with source 0 on metainfo[{key!r}]')
        super().__init__(built)
        self._metainfo = first

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)


def split_batch(batch_size: int, source_ratio: Sequence[float]) -> list[int]:
    """Samples per source in a batch: largest-remainder rounding of the ratio.

    Every source with a positive ratio gets at least one sample, otherwise the ratio
    cannot be met at this batch size and we refuse it.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    ratio = np.asarray(source_ratio, dtype=np.float64)
    if ratio.ndim != 1 or ratio.size == 0 or np.any(ratio < 0) or ratio.sum() <= 0 \
            or not np.all(np.isfinite(ratio)):
        raise ValueError(f'source_ratio must be non-negative numbers with a positive sum, '
                         f'got {list(source_ratio)}')
    exact = batch_size * ratio / ratio.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind='stable')
    counts[order[:batch_size - counts.sum()]] += 1
    starved = [i for i in range(ratio.size) if ratio[i] > 0 and counts[i] == 0]
    if starved:
        raise ValueError(f'batch_size {batch_size} is too small for source_ratio '
                         f'{list(source_ratio)}: sources {starved} would get no sample')
    return counts.tolist()


@DATA_SAMPLERS.register_module()
class MixedSourceSampler(Sampler):
    """Infinite sampler over a ``ConcatDataset`` with a fixed per-batch source mix.

    Args:
        dataset: a dataset with ``cumulative_sizes`` (``SourceConcatDataset``).
        batch_size: samples per batch on each rank (= the dataloader's batch_size).
        source_ratio: relative share of each source in a batch, e.g. ``[1, 1]``.
        shuffle: draw seeded permutations (False: each source in order, for debugging).
        seed: shared seed; None draws one and synchronises it over the ranks.
    """

    def __init__(self, dataset, batch_size: int, source_ratio: Sequence[float],
                 shuffle: bool = True, seed: Optional[int] = None) -> None:
        if not hasattr(dataset, 'cumulative_sizes'):
            raise TypeError('MixedSourceSampler needs a ConcatDataset of the sources, got '
                            f'{type(dataset).__name__}')
        sizes = np.diff([0, *dataset.cumulative_sizes]).tolist()
        if len(source_ratio) != len(sizes):
            raise ValueError(f'source_ratio {list(source_ratio)} has {len(source_ratio)} entries '
                             f'but the ConcatDataset has {len(sizes)} sources')
        self.num_per_source = split_batch(batch_size, source_ratio)
        empty = [i for i, (n, size) in enumerate(zip(self.num_per_source, sizes))
                 if n > 0 and size == 0]
        if empty:
            raise ValueError(f'MixedSourceSampler: sources {empty} are empty but have a '
                             f'positive ratio in {list(source_ratio)}')
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.source_ratio = list(source_ratio)
        self.sizes = sizes
        self.offsets = [0, *dataset.cumulative_sizes[:-1]]
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0

    def _source_stream(self, source: int) -> Iterator[int]:
        """This rank's share of the endless permutation stream of one source."""
        size = self.sizes[source]
        state = np.random.SeedSequence([self.seed, self.epoch, source]).generate_state(1)[0]
        g = torch.Generator()
        g.manual_seed(int(state))

        def endless() -> Iterator[int]:
            while True:
                if self.shuffle:
                    yield from torch.randperm(size, generator=g).tolist()
                else:
                    yield from range(size)

        return itertools.islice(endless(), self.rank, None, self.world_size)

    def __iter__(self) -> Iterator[int]:
        streams = {i: self._source_stream(i) for i, n in enumerate(self.num_per_source) if n}
        while True:
            for source, stream in streams.items():
                offset = self.offsets[source]
                for _ in range(self.num_per_source[source]):
                    yield offset + next(stream)

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Use another set of permutations (called by ``DistSamplerSeedHook``)."""
        self.epoch = int(epoch)
