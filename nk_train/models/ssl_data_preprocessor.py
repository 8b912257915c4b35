"""Normalise and stack each branch of a Stage1 batch with the pose model's own preprocessor.

Training batches come from ``ssl_collate`` as ``{'inputs': {branch: [img, ...]},
'data_samples': {branch: [sample, ...]}}``; each branch (``sup``, ``weak``, ``strong_*``) is
run through one ``PoseDataPreprocessor`` on its own, as mmdet's
``MultiBranchDataPreprocessor`` does. Validation/test batches are ordinary pose batches and
go straight through.
"""
from __future__ import annotations

from mmengine.model import BaseDataPreprocessor
from mmpose.registry import MODELS


@MODELS.register_module()
class SSLDataPreprocessor(BaseDataPreprocessor):
    """Branch-wise wrapper around a pose data preprocessor (config ``data_preprocessor``)."""

    def __init__(self, data_preprocessor: dict) -> None:
        super().__init__()
        self.data_preprocessor = MODELS.build(data_preprocessor)

    def forward(self, data: dict, training: bool = False) -> dict:
        if not isinstance(data.get('inputs'), dict):
            return self.data_preprocessor(data, training)
        inputs, samples = {}, {}
        for branch, branch_inputs in data['inputs'].items():
            out = self.data_preprocessor(
                dict(inputs=branch_inputs, data_samples=data['data_samples'][branch]), training)
            inputs[branch], samples[branch] = out['inputs'], out['data_samples']
        return {'inputs': inputs, 'data_samples': samples}
