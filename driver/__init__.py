"""zeroskip.driver: run bundles on the board, the simulated overlay or the golden model (numpy only).

``ZeroSkip(open_backend("auto" | "board" | "sim" | "model"))`` is the one driver API;
see :mod:`zeroskip.driver.driver`.
"""

from .driver import (
    ConfigMismatch,
    DmaTimeout,
    EngineError,
    OverlayStuck,
    ProgramInfo,
    RunResult,
    TransferTooLarge,
    ZeroSkip,
    ZeroSkipError,
    open_backend,
)
from .program import HwConfig

__all__ = ["ConfigMismatch", "DmaTimeout", "EngineError", "HwConfig", "OverlayStuck", "ProgramInfo", "RunResult",
           "TransferTooLarge", "ZeroSkip", "ZeroSkipError", "open_backend"]
