"""``SeededViewDataset``: N instances x K fixed views, one dataset index per (instance, view).

Index i is view ``k = i % K`` of instance ``n = i // K``. Any sampler (shuffled, distributed,
infinite) therefore picks (instance, view) pairs, and the geometric-cache row of a sample is
known from the sample alone, with no dependence on worker count or order. The wrapper adds
``nk_sample_id`` (the COCO annotation ``id``) and ``geo_seed_k`` to the data info before the
inner dataset's pipeline runs (``SeededTopdownAffine`` reads them). A ``LoadGeoCacheMaps``
in that pipeline is shown the dataset's instances when the dataset is built
(``check_dataset``), so a dataset that does not hold exactly the cache's instances, views and
image files fails there and not at its first read.
"""
from __future__ import annotations

import copy
from typing import Any

from mmengine.dataset import BaseDataset, force_full_init
from mmpose.registry import DATASETS
from torch.utils.data import Dataset

from .geo_cache_transform import LoadGeoCacheMaps


@DATASETS.register_module()
class SeededViewDataset(Dataset):
    """Args:
        dataset: the wrapped dataset or its config (an mmpose/mmengine ``BaseDataset`` whose
            data infos carry the annotation ``id``; its ``pipeline`` is applied).
        num_seeds: K, the number of fixed views per instance (``k = 0`` is the identity).
        lazy_init: defer loading the annotations until ``full_init()``.
    """

    def __init__(self, dataset: BaseDataset | dict, num_seeds: int,
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not isinstance(dataset, BaseDataset):
            raise TypeError(f'SeededViewDataset wraps an mmengine BaseDataset, got {type(dataset)}')
        if int(num_seeds) != num_seeds or num_seeds < 1:
            raise ValueError(f'num_seeds must be a positive integer, got {num_seeds!r}')
        self.dataset = dataset
        self.num_seeds = int(num_seeds)
        self._metainfo = dataset.metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self._metainfo)

    @property
    def pipeline(self):
        return self.dataset.pipeline

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        self._fully_initialized = True
        loaders = [t for t in getattr(self.dataset.pipeline, 'transforms', [])
                   if isinstance(t, LoadGeoCacheMaps)]
        if loaders:
            infos = (self.dataset.get_data_info(n) for n in range(len(self.dataset)))
            samples = [(int(info['id']), str(info['img_path'])) for info in infos]
            for loader in loaders:
                loader.check_dataset(samples, self.num_seeds, type(self.dataset).__name__)

    @force_full_init
    def __len__(self) -> int:
        return len(self.dataset) * self.num_seeds

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The inner data info of instance ``idx // K``, tagged with its id and view k."""
        if not -len(self) <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} views')
        n, k = divmod(idx % len(self), self.num_seeds)
        info = self.dataset.get_data_info(n)
        if 'id' not in info:
            raise KeyError(f'{type(self.dataset).__name__} instance {n} ({info.get("img_path")})'
                           ' has no annotation "id": the cache and the seeded views key on it')
        info['nk_sample_id'] = int(info['id'])
        info['geo_seed_k'] = k
        return info

    def __getitem__(self, idx: int) -> Any:
        if not self._fully_initialized:
            self.full_init()
        info = self.get_data_info(idx)
        info['dataset'] = self.dataset  # as BaseCocoStyleDataset.prepare_data does
        data = self.dataset.pipeline(info)
        if data is None:
            # Refetching another index would silently change which views are trained on.
            raise RuntimeError(f'pipeline returned None for sample {info["nk_sample_id"]} view '
                               f'{info["geo_seed_k"]} ({info.get("img_path")})')
        return data
