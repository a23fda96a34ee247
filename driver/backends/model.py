"""The ``model`` backend: pynq-shaped objects backed by the golden model.

:class:`ModelOverlay` is the overlay as its ports see it: the AXI-Lite register file
(``contract.REG``) and the two stream ports, with the engine behaviour of
docs/hardware.md ("Commands") around a :class:`~zeroskip.driver.golden.GoldenEngine`:
``CTRL.LOAD`` / ``CTRL.RUN`` arm the engine, the next input packet is the program or the
batch, and the answer (ACK, results or error beat) goes out as one packet ending with
TLAST. Data arriving while idle is answered with ``UNEXPECTED``. ``FAULT`` (when built
with fault injection) suppresses TLAST, as the RTL's does.

:class:`ModelDMA` is an AXI DMA in simple mode (:mod:`zeroskip.driver.backend`) whose
send channel delivers each transfer to the overlay as one packet and whose receive
channel takes the overlay's output beats, completing on TLAST. The engine answers
instantly, so ``CYCLES − STALL`` equals the golden model's count and ``STALL`` is 0.

numpy only.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .. import contract as C
from ..golden import GoldenEngine, parse_response, response_beat
from ..program import HwConfig
from .base import MAX_LEN_BITS, STREAM_BYTES, Backend, StreamChannel, StreamDMA, host_allocate

R = C.REG
E = C.ERROR_CODES

# STATUS[19:16] state values of the model (informational).
S_IDLE, S_LOAD, S_RUN, S_OUTPUT = 0, 1, 2, 3


class ModelOverlay:
    """Register file and stream ports of one overlay, computed by the golden model."""

    def __init__(self, hw: HwConfig | None = None, *, fault_inject: bool = False):
        self.hw = hw or HwConfig()
        self.engine = GoldenEngine(self.hw)
        self.fault_inject = bool(fault_inject)
        self.batch = 1
        self.irq_en = 0
        self.irq_status = 0
        self.fault = 0
        self.err_info = 0
        self.armed: str | None = None
        self.done = False
        self.code = 0
        self._out: deque = deque()     # (beat, tlast) waiting for the receive channel

    # -- AXI-Lite -------------------------------------------------------------------
    def read(self, offset: int = 0) -> int:
        hw = self.hw
        cnt = self.engine.counters
        if offset == R["ID"]:
            return C.ID_MAGIC
        if offset == R["VERSION"]:
            return C.FORMAT_VERSION | (C.RTL_VERSION << 16)
        if offset == R["CONFIG0"]:
            return hw.lanes | (hw.act_log2 << 8) | (int(hw.site_cap > 0) << 16) | (int(self.fault_inject) << 17)
        if offset == R["CONFIG1"]:
            return hw.w_slots
        if offset == R["CONFIG2"]:
            return hw.ch_cap | (hw.out_cap << 16)
        if offset == R["CONFIG3"]:
            return hw.max_layers | (hw.site_cap << 8)
        if offset == R["STATUS"]:
            return self._status()
        if offset == R["BATCH"]:
            return self.batch
        if offset in (R["CYCLES"], R["STALL"], R["COMPUTE"], R["MACS"]):
            name = next(k for k, v in R.items() if v == offset)
            return int(cnt[name]) & 0xFFFFFFFF
        if offset == R["IRQ_EN"]:
            return self.irq_en
        if offset == R["IRQ_STATUS"]:
            return self.irq_status
        if offset == R["ERR_INFO"]:
            return self.err_info
        if offset == R["FAULT"]:
            return self.fault
        return 0

    def write(self, offset: int, value: int) -> None:
        value = int(value) & 0xFFFFFFFF
        if offset == R["CTRL"]:
            if value & C.CTRL["SOFT_RESET"]:
                self.armed = None
                self._out.clear()
            if value & C.CTRL["LOAD"]:
                self._arm("LOAD")
            elif value & C.CTRL["RUN"]:
                self._arm("RUN")
        elif offset == R["BATCH"]:
            self.batch = value & 0xFFFF
        elif offset == R["IRQ_EN"]:
            self.irq_en = value & 3
        elif offset == R["IRQ_STATUS"]:
            self.irq_status &= ~value & 3
        elif offset == R["FAULT"] and self.fault_inject:
            self.fault = value & 1

    def _arm(self, cmd: str) -> None:
        self.armed = cmd
        self.done = False
        self.code = 0

    def _status(self) -> int:
        busy = self.armed is not None or bool(self._out)
        state = S_OUTPUT if self._out else {None: S_IDLE, "LOAD": S_LOAD, "RUN": S_RUN}[self.armed]
        return (int(busy) * C.STATUS["BUSY"] | int(self.done) * C.STATUS["DONE"]
                | int(self.code != 0) * C.STATUS["ERROR"]
                | int(self.engine.program is not None) * C.STATUS["PROGRAM_VALID"]
                | (self.code << 8) | (state << 16))

    # -- streams --------------------------------------------------------------------
    def stream_in(self, beats: np.ndarray) -> None:
        """One input packet (TLAST on its last beat) arrives; queue the answer."""
        beats = np.asarray(beats, np.uint64)
        if self.armed == "LOAD":
            resp = self.engine.load(beats)
            _, code, info = parse_response(int(resp[-1]))
        elif self.armed == "RUN":
            resp = self.engine.run(beats, self.batch)
            code = self.engine.status_error
            info = parse_response(int(resp[-1]))[2] if code else 0
        else:
            code, info = E["UNEXPECTED"], 0
            resp = np.array([response_beat(C.ERR_MAGIC, code, info)], np.uint64)
        self.armed = None
        self.done = True
        self.code = int(code)
        if code:
            self.err_info = int(info)
        self.irq_status |= 2 if code else 1
        last = len(resp) - 1
        self._out.extend((int(b), i == last and not self.fault) for i, b in enumerate(resp))

    def stream_out(self, max_beats: int) -> tuple[list, bool]:
        """Up to ``max_beats`` output beats; stops after a TLAST beat. Returns the beats
        and whether the last one carried TLAST."""
        out = []
        while self._out and len(out) < max_beats:
            beat, last = self._out.popleft()
            out.append(beat)
            if last:
                return out, True
        return out, False


class _ModelSend(StreamChannel):
    def __init__(self, overlay: ModelOverlay, max_size: int):
        self._ov = overlay
        super().__init__(tx=True, max_size=max_size)

    def _begin(self, payload: bytes) -> None:
        pad = -len(payload) % STREAM_BYTES
        self._ov.stream_in(np.frombuffer(payload + bytes(pad), "<u8"))

    def _poll(self) -> bool:
        return True


class _ModelRecv(StreamChannel):
    def __init__(self, overlay: ModelOverlay, max_size: int):
        self._ov = overlay
        self._cap = 0
        self._got: list = []
        super().__init__(tx=False, max_size=max_size)

    def _begin(self, nbytes: int) -> None:
        self._cap = -(-nbytes // STREAM_BYTES)
        self._got = []

    def _poll(self) -> bool:
        beats, last = self._ov.stream_out(self._cap - len(self._got))
        self._got.extend(beats)
        if last:
            self._received = np.array(self._got, "<u8").tobytes()
        return last

    def _reset(self) -> None:
        self._got = []
        self._cap = 0


class ModelDMA(StreamDMA):
    """AXI DMA (simple mode) wired to a :class:`ModelOverlay`'s stream ports."""

    def __init__(self, overlay: ModelOverlay, len_bits: int = MAX_LEN_BITS):
        mx = (1 << len_bits) - 1
        super().__init__(_ModelSend(overlay, mx), _ModelRecv(overlay, mx), len_bits)


def open_model(hw: HwConfig | None = None, *, fault_inject: bool = False, len_bits: int = MAX_LEN_BITS) -> Backend:
    """A :class:`~zeroskip.driver.backend.Backend` computing with the golden model."""
    ov = ModelOverlay(hw, fault_inject=fault_inject)
    return Backend(kind="model", ip=ov, dma=ModelDMA(ov, len_bits), allocate=host_allocate,
                   default_timeout=2.0, min_cycles_per_s=2e5,
                   description=f"golden model, {ov.hw}")
