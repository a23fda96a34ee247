"""Pynq-shaped building blocks shared by the ``model`` and ``sim`` backends.

The driver (:mod:`zeroskip.driver.driver`) talks to the same four things on every
backend, shaped like PYNQ's classes so the board needs no adapter:

* an IP with ``read(offset)`` / ``write(offset, value)`` (``pynq.DefaultIP``);
* a DMA with ``sendchannel`` / ``recvchannel`` (``pynq.lib.dma.DMA`` in simple mode),
  each with ``transfer(array, start=0, nbytes=0)``, ``wait()``, ``idle``, ``running``,
  ``error``, ``start()``, ``stop()``, ``transferred``; the DMA itself has
  ``read``/``write`` for its control registers (the driver uses the soft-reset bit) and
  ``buffer_max_size`` (the length-register limit);
* ``allocate(shape, dtype)`` returning a numpy array with ``flush()``, ``invalidate()``,
  ``physical_address`` and ``freebuffer()`` (``pynq.allocate``).

:class:`StreamChannel` implements the channel behaviour of the Xilinx AXI DMA in simple
mode (PG021) on top of three hooks a backend provides (start a transfer, poll it, reset),
including what users trip over on the board: a transfer longer than the length register
allows is refused with pynq's error, and a stream-to-memory transfer completes only on
TLAST — without it the channel never becomes idle.

numpy only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# AXI DMA register offsets and bits (PG021, simple mode) used by the driver and emulated here.
MM2S_DMACR = 0x00
MM2S_DMASR = 0x04
S2MM_DMACR = 0x30
S2MM_DMASR = 0x34
DMACR_RS = 0x1          # run / stop
DMACR_RESET = 0x4       # soft reset of the whole core; reads 1 until the reset is done
DMASR_HALTED = 0x1
DMASR_IDLE = 0x2
DMASR_INT_ERR = 0x10    # internal error, e.g. a zero-length transfer
DMASR_ERR_MASK = 0x70
MAX_LEN_BITS = 26       # widest AXI DMA buffer-length register
STREAM_BYTES = 8        # 64-bit stream: one beat


@dataclass
class Backend:
    """What the driver needs from a backend: the engine's register port, the DMA and an
    allocator, plus how to release them. ``kind`` is ``"board"``, ``"sim"`` or ``"model"``.
    ``min_cycles_per_s``: the slowest rate at which the backend advances the engine (on the
    board a quarter of the 100 MHz clock, which covers memory stalls; in simulation the
    simulator's speed on a busy machine), from which the driver scales its deadlines."""

    kind: str
    ip: object
    dma: object
    allocate: Callable
    close: Callable[[], None] = field(default=lambda: None)
    clock_hz: float = 100e6
    default_timeout: float = 2.0
    description: str = ""
    # the slowest rate (engine cycles per wall second) at which the backend runs a
    # command: wait deadlines are default_timeout + cycles / min_cycles_per_s
    min_cycles_per_s: float = 25e6

    def __repr__(self) -> str:
        return f"Backend({self.kind}: {self.description})"


# ------------------------------------------------------------------------------- buffers

_ADDRESSES = itertools.count(0x1000_0000, 0x10_0000)


class HostBuffer(np.ndarray):
    """A plain numpy array shaped like ``pynq.buffer.PynqBuffer``: cache maintenance is a
    no-op and ``physical_address`` is a made-up, 1 MiB-aligned address."""

    def __new__(cls, shape, dtype="u4"):
        self = np.zeros(shape, dtype).view(cls)
        self._phys = next(_ADDRESSES)
        return self

    def __array_finalize__(self, obj):
        base = getattr(obj, "_phys", None)
        if base is None:
            self._phys = None
            return
        off = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
        self._phys = base + off

    @property
    def physical_address(self) -> int:
        return self._phys

    def flush(self) -> None:
        """Write the CPU cache back to memory (nothing to do in host memory)."""

    def invalidate(self) -> None:
        """Drop stale cache lines (nothing to do in host memory)."""

    def freebuffer(self) -> None:
        """Release the buffer (host memory is garbage-collected)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.freebuffer()


def host_allocate(shape, dtype="u4", **kwargs) -> HostBuffer:
    """``pynq.allocate`` for the model and sim backends."""
    return HostBuffer(shape, dtype)


# ------------------------------------------------------------------------------- DMA

class StreamChannel:
    """One AXI DMA channel in simple mode, with pynq's ``_SDMAChannel`` interface.

    Subclasses provide ``_begin(data_or_nbytes)``, ``_poll() -> bool`` (advance; True
    once the transfer has completed) and optionally ``_reset()``; a receive channel's
    ``_poll`` stores the received bytes in ``self._received``.
    """

    def __init__(self, tx: bool, max_size: int, width: int = STREAM_BYTES):
        self.tx = tx
        self._max_size = int(max_size)
        self._align = width
        self._rs = False
        self._active = None        # (array, start, nbytes) of the transfer in flight
        self._done = False
        self._err = 0
        self._received = b""
        self._first_transfer = True
        self.transferred = 0
        self.start()

    # -- status, as the DMASR bits read on the board ------------------------------------
    def status(self) -> int:
        """The DMASR value: halted, idle, error bits."""
        if self._active is not None and not self._done and self._rs and not self._err:
            self._done = bool(self._poll())
        s = 0 if self._rs else DMASR_HALTED
        if self._done and self._rs:
            s |= DMASR_IDLE
        return s | self._err

    @property
    def running(self) -> bool:
        """True while the channel is started (DMACR.RS set, not halted)."""
        return self._rs

    @property
    def idle(self) -> bool:
        """True once the last transfer has completed (polling advances the backend)."""
        return bool(self.status() & DMASR_IDLE)

    @property
    def error(self) -> bool:
        """True when the channel stopped on an error."""
        return bool(self._err & DMASR_ERR_MASK)

    def start(self) -> None:
        """Start the channel (DMACR.RS = 1)."""
        self._rs = True
        self._first_transfer = True

    def stop(self) -> None:
        """Stop the channel; a transfer in flight is abandoned."""
        self._rs = False

    def reset(self) -> None:
        """The effect of DMACR.Reset on this channel: halted, nothing in flight."""
        self._rs = False
        self._active = None
        self._done = False
        self._err = 0
        self._received = b""
        self._reset()

    # -- transfers ----------------------------------------------------------------------
    def transfer(self, array, start: int = 0, nbytes: int = 0) -> None:
        """Start a transfer of ``nbytes`` bytes (0: the rest of ``array``) from byte
        ``start``; the send channel flushes ``array`` first, as pynq does."""
        if not self._rs:
            raise RuntimeError("DMA channel not started")
        if not self._first_transfer and self._active is not None and not self.idle:
            raise RuntimeError("DMA channel not idle")
        if nbytes == 0:
            nbytes = array.nbytes - start
        if nbytes > self._max_size:
            raise ValueError(
                f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA buffer size {self._max_size}.")
        if (array.physical_address + start) % self._align:
            raise RuntimeError(
                f"DMA does not support unaligned transfers; Starting address must be aligned to {self._align} bytes.")
        self._first_transfer = False
        self._active = (array, start, nbytes)
        self._done = False
        self.transferred = 0
        self._received = b""
        if nbytes == 0:                   # the core flags a zero length as an internal error
            self._err = DMASR_INT_ERR
            return
        if self.tx:
            array.flush()
            raw = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
            self._begin(raw[start:start + nbytes].tobytes())
        else:
            self._begin(nbytes)

    def wait(self) -> None:
        """Block until the transfer completes (no timeout, like pynq; the driver polls
        ``idle`` against a deadline instead). The receive buffer is invalidated."""
        if not self._rs:
            raise RuntimeError("DMA channel not started")
        while True:
            s = self.status()
            if s & DMASR_ERR_MASK:
                raise RuntimeError("DMA Internal Error (transfer length 0?)")
            if s & DMASR_IDLE:
                break
        array, start, nbytes = self._active
        if self.tx:
            self.transferred = nbytes
        else:
            n = len(self._received)
            raw = array.view(np.uint8).reshape(-1)
            raw[start:start + n] = np.frombuffer(self._received, np.uint8)
            array.invalidate()
            self.transferred = n
        self._active = None

    # -- backend hooks ------------------------------------------------------------------
    def _begin(self, payload) -> None:  # bytes (tx) or capacity in bytes (rx)
        raise NotImplementedError

    def _poll(self) -> bool:
        raise NotImplementedError

    def _reset(self) -> None:
        pass


class StreamDMA:
    """An AXI DMA with a send and a receive :class:`StreamChannel` and the control
    registers the driver touches (DMACR.RS, DMACR.Reset, DMASR)."""

    def __init__(self, sendchannel: StreamChannel, recvchannel: StreamChannel, len_bits: int = MAX_LEN_BITS):
        self.sendchannel = sendchannel
        self.recvchannel = recvchannel
        self.len_bits = int(len_bits)
        self.buffer_max_size = (1 << self.len_bits) - 1

    def _chan(self, offset: int) -> StreamChannel:
        return self.recvchannel if offset >= S2MM_DMACR else self.sendchannel

    def read(self, offset: int = 0) -> int:
        ch = self._chan(offset)
        if offset in (MM2S_DMACR, S2MM_DMACR):
            return DMACR_RS if ch.running else 0
        if offset in (MM2S_DMASR, S2MM_DMASR):
            return ch.status()
        return 0

    def write(self, offset: int, value: int) -> None:
        if offset not in (MM2S_DMACR, S2MM_DMACR):
            return
        if value & DMACR_RESET:           # resets both channels; done at once here
            self.sendchannel.reset()
            self.recvchannel.reset()
        elif value & DMACR_RS:
            self._chan(offset).start()
        else:
            self._chan(offset).stop()
