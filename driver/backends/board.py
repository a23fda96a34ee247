"""The ``board`` backend: the PYNQ overlay and the engine's register-level driver.

:class:`ZeroSkipIP` is the engine's register-level driver
(:class:`~zeroskip.driver.registers.Registers`: status, error, config, start a load or
run, soft reset, counters) as a ``pynq.DefaultIP`` subclass bound to the IP's VLNV, so
``pynq.Overlay("zeroskip.bit")`` hands it out for our block once this module has been
imported. The class exists only when pynq imports; the module imports with numpy alone
(``ZeroSkipIP`` is then None), and ``zeroskip.driver`` imports it only for the board.

:func:`open_board` loads ``zeroskip.bit`` (with its ``zeroskip.hwh`` next to it) and
returns a :class:`~zeroskip.driver.backend.Backend` over the overlay's IP, its
``axi_dma`` and ``pynq.allocate``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .. import contract as C
from ..errors import OverlayError
from ..registers import Registers
from .base import Backend

ENV_OVERLAY = "ZEROSKIP_OVERLAY"
BITFILE = "zeroskip.bit"
DMA_VLNV_PREFIX = "xilinx.com:ip:axi_dma:"




try:  # pynq is present on the board (and installable on a PC for tests)
    from pynq import DefaultIP as _DefaultIP
except Exception:  # noqa: BLE001 - no pynq, or pynq failing to initialise without a device
    _DefaultIP = None

if _DefaultIP is not None:
    class ZeroSkipIP(Registers, _DefaultIP):
        """PYNQ driver for the zeroskip engine: ``Overlay`` binds it to our IP by VLNV."""

        bindto = [C.VLNV]

        def __init__(self, description):
            _DefaultIP.__init__(self, description=description)
else:
    ZeroSkipIP = None


# ---------------------------------------------------------------------------- board loader

def default_overlay_dir() -> Path:
    """Where ``zeroskip.bit``/``.hwh`` are looked for: ``$ZEROSKIP_OVERLAY`` (a folder or
    the .bit itself), else the installed ``zeroskip.overlay`` package folder."""
    env = os.environ.get(ENV_OVERLAY)
    if env:
        return Path(env)
    import zeroskip.overlay
    return Path(zeroskip.overlay.__file__).resolve().parent


def find_bitfile(bitfile: str | os.PathLike | None = None) -> Path:
    """The overlay's .bit, after checking that its .hwh sits next to it."""
    p = Path(bitfile) if bitfile is not None else default_overlay_dir()
    if p.is_dir():
        p = p / BITFILE
    if not p.is_file():
        raise OverlayError(
            f"no overlay bitstream at {p}: build it (fusesoc run --target pynq_z2 zeroskip), copy "
            f"zeroskip.bit and zeroskip.hwh into {p.parent}, or point ${ENV_OVERLAY} at them")
    hwh = p.with_suffix(".hwh")
    if not hwh.is_file():
        raise OverlayError(
            f"{hwh.name} is missing next to {p}: pynq reads the IP addresses and the DMA configuration "
            f"from the .hwh; copy the .hwh produced by the same Vivado run as the .bit, with the same base name")
    return p


def find_cores(ip_dict: dict) -> tuple[str, str]:
    """(engine, DMA) entry names in an overlay's ``ip_dict``; raises when either is missing."""
    ours = [n for n, d in ip_dict.items() if d.get("type") == C.VLNV]
    if not ours:
        same = [f"{n} ({d.get('type')})" for n, d in ip_dict.items()
                if str(d.get("type", "")).rpartition(":")[0] == C.VLNV.rpartition(":")[0]]
        hint = f"; found another version: {', '.join(same)}: rebuild the overlay or update zeroskip" if same else ""
        raise OverlayError(
            f"the overlay has no {C.VLNV} IP (it has: {', '.join(sorted(ip_dict)) or 'nothing'}){hint}: "
            "load zeroskip.bit with its own .hwh")
    dmas = [n for n, d in ip_dict.items() if str(d.get("type", "")).startswith(DMA_VLNV_PREFIX)]
    if not dmas:
        raise OverlayError("the overlay has no axi_dma (xilinx.com:ip:axi_dma): the block design must connect "
                           f"an AXI DMA in simple mode to {ours[0]}'s streams")
    return ours[0], dmas[0]


def open_board(bitfile: str | os.PathLike | None = None, *, download: bool = True) -> Backend:
    """Load the overlay and return the ``board`` backend."""
    path = find_bitfile(bitfile)
    try:
        import pynq
    except Exception as e:
        raise OverlayError(f"pynq does not import ({e}): the board backend runs on a PYNQ image "
                           "(pip install zeroskip[board])") from e
    ol = pynq.Overlay(str(path), download=download)
    ip_name, dma_name = find_cores(ol.ip_dict)
    ip = functools.reduce(getattr, ip_name.split("/"), ol)
    dma = functools.reduce(getattr, dma_name.split("/"), ol)
    return Backend(kind="board", ip=ip, dma=dma, allocate=pynq.allocate, close=lambda: None,
                   default_timeout=2.0, description=f"{path} ({ip_name}, {dma_name})")
