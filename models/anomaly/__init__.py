"""The general streaming anomaly detector: any series, any profile, one configuration."""

from models.anomaly.codec import StateError
from models.anomaly.config import DEFAULT, DetectorConfig
from models.anomaly.detector import (
    Result,
    StreamingDetector,
    StreamScores,
    epoch_seconds,
    frame_scores,
    score_stream,
)

__all__ = [
    "DEFAULT",
    "DetectorConfig",
    "Result",
    "StateError",
    "StreamScores",
    "StreamingDetector",
    "epoch_seconds",
    "frame_scores",
    "score_stream",
]
