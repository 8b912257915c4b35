"""Stage1 models: the student/EMA-teacher estimator, its data preprocessor and L_cons."""
from .consistency_loss import HeatmapConsistencyLoss
from .ssl_data_preprocessor import SSLDataPreprocessor
from .ssl_estimator import SemiTopdownPoseEstimator

__all__ = ['HeatmapConsistencyLoss', 'SSLDataPreprocessor', 'SemiTopdownPoseEstimator']
