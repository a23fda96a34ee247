"""zeroskip.driver: run bundles on the board, the simulated overlay or the golden model (numpy only).

``ZeroSkip(open_backend("auto" | "board" | "sim" | "model"))`` is the one driver API;
see :mod:`zeroskip.driver.driver`. Backends live in :mod:`zeroskip.driver.backends`,
the simulator runtime in :mod:`zeroskip.driver.sim`, every error under
:class:`ZeroSkipError` in :mod:`zeroskip.driver.errors`.
"""

from .backends import board_available, open_backend
from .driver import ProgramInfo, RunResult, ZeroSkip
from .errors import (
    BuildError,
    BundleError,
    CompileError,
    ConfigMismatch,
    DmaTimeout,
    EngineError,
    OverlayError,
    OverlayStuck,
    ProgramError,
    SimError,
    SynthError,
    TransferTooLarge,
    UnsupportedModel,
    ZeroSkipError,
)
from .predict import Model
from .program import HwConfig

__all__ = ["BuildError", "BundleError", "CompileError", "ConfigMismatch", "DmaTimeout", "EngineError", "HwConfig",
           "Model",
           "OverlayError", "OverlayStuck", "ProgramError", "ProgramInfo", "RunResult", "SimError", "SynthError",
           "TransferTooLarge", "UnsupportedModel", "ZeroSkip", "ZeroSkipError", "board_available", "open_backend"]
