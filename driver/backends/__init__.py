"""The backends the driver runs on, all shaped like PYNQ's classes (see :mod:`.base`):
``board`` (pynq overlay, :mod:`.board`), ``sim`` (the RTL in a live simulation,
:mod:`.sim`) and ``model`` (the golden model, :mod:`.model`). :func:`open_backend` picks
and opens one; the driver (:mod:`zeroskip.driver.driver`) imports none of them.
"""

from __future__ import annotations

import os

from ..program import HwConfig
from .base import MAX_LEN_BITS, Backend

KINDS = ("auto", "board", "sim", "native", "model")


def board_available(bitfile=None) -> bool:
    """True on a PYNQ board (pynq imports, /proc/device-tree names a PYNQ board) with the
    overlay files in place."""
    if not os.path.isfile("/proc/device-tree/chosen/pynq_board"):
        return False
    try:
        import pynq  # noqa: F401

        from .board import find_bitfile
        find_bitfile(bitfile)
    except Exception:  # noqa: BLE001
        return False
    return True


def open_backend(kind: str = "auto", hw: HwConfig | None = None, *, simulator: str = "verilator",
                 bitfile=None, fault_inject: bool = False, len_bits: int | None = None, **sim_kw) -> Backend:
    """Open a backend: ``"board"`` (pynq overlay), ``"sim"`` (the RTL in a live
    simulation under cocotb, Verilator or Icarus), ``"native"`` (the same RTL Verilated
    into a library the C++ side clocks and drives: no cocotb, many times faster;
    :mod:`zeroskip.driver.sim.native`), ``"model"`` (the golden model) or ``"auto"``
    (board when running on a PYNQ board with the overlay files present, else sim).

    ``hw`` is the configuration to simulate or model (the board reads its own);
    ``len_bits`` the DMA length-register width of sim/model (default 26);
    ``fault_inject`` builds the test-only FAULT register into sim/model.
    """
    if kind not in KINDS:
        raise ValueError(f"backend kind must be one of {', '.join(repr(k) for k in KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "board" if board_available(bitfile) else "sim"
    lb = MAX_LEN_BITS if len_bits is None else int(len_bits)
    if kind == "board":
        from .board import open_board
        return open_board(bitfile)
    if kind == "native":   # the same RTL, Verilated into a library driven from C++: much faster
        from ..sim.native import open_native
        return open_native(hw or HwConfig(), fault_inject=fault_inject, len_bits=lb, quiet=sim_kw.get("quiet", False))
    if kind == "sim":
        from .sim import open_sim
        return open_sim(hw or HwConfig(), simulator=simulator, fault_inject=fault_inject, len_bits=lb, **sim_kw)
    from .model import open_model
    return open_model(hw or HwConfig(), fault_inject=fault_inject, len_bits=lb)


__all__ = ["Backend", "KINDS", "board_available", "open_backend"]
