"""The two-stream spoof-trace disentanglement network (DESIGN §4): presets, layers, losses.

Public names for the rest of edgefas; submodules hold one idea each (``presets``, ``network``,
``generator``, ``fusion``, ``discriminator``, ``synthesis``, ``objective``, ``complexity``).
"""

from train.model.complexity import ModelSummary, count_macs, summarise_preset
from train.model.network import ModelOutputs, SpoofTraceNet, TrainOutputs, build_model
from train.model.objective import TrainConfig
from train.model.presets import PRESETS, ModelConfig, get_preset

__all__ = [
    "PRESETS",
    "ModelConfig",
    "ModelOutputs",
    "ModelSummary",
    "SpoofTraceNet",
    "TrainConfig",
    "TrainOutputs",
    "build_model",
    "count_macs",
    "get_preset",
    "summarise_preset",
]
