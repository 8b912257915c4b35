"""Stage1 models: the student/EMA-teacher estimator, its data preprocessor, L_cons, the Hybrid
gate, L_dev (Teacher B) and the differentiable keypoint decode."""
from .consistency_loss import HeatmapConsistencyLoss
from .deviation_loss import PriorTeacher, deviation_loss
from .gating import GateDecision, HybridGate
from .soft_argmax import soft_argmax
from .ssl_data_preprocessor import SSLDataPreprocessor
from .ssl_estimator import SemiTopdownPoseEstimator

__all__ = ['GateDecision', 'HeatmapConsistencyLoss', 'HybridGate', 'PriorTeacher',
           'SSLDataPreprocessor', 'SemiTopdownPoseEstimator', 'deviation_loss', 'soft_argmax']
