"""Stage1 models: the student/EMA-teacher estimator, its data preprocessor, L_cons and the
differentiable keypoint decode. The other terms live with their components: L_dev and
Teacher B in ``ddp_prior``, the Hybrid gate in ``kps``, the CMGC losses and the online
geometric teacher in ``cmgc``."""
from .consistency_loss import HeatmapConsistencyLoss
from .soft_argmax import soft_argmax
from .ssl_data_preprocessor import SSLDataPreprocessor
from .ssl_estimator import SemiTopdownPoseEstimator

__all__ = ['HeatmapConsistencyLoss', 'SSLDataPreprocessor', 'SemiTopdownPoseEstimator',
           'soft_argmax']
