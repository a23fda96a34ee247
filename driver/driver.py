"""The zeroskip driver: one code path for the board, the simulated overlay and the model.

::

    from zeroskip.driver import ZeroSkip, open_backend
    with ZeroSkip(open_backend("auto")) as zs:
        zs.load_program(program_beats)            # program.bin of a bundle, uint64 beats
        res = zs.run(packed_images, batch_size=32)   # uint8 (N, in_bytes)
        res.outputs, res.cycles, print(res.report())

Each batch is timed in contiguous steps, as in FINN's ``driver_base`` (see
:data:`STEPS`): **pack** (images padded to whole 64-bit beats), **copy** (into the DMA
buffer), **start** (the ``CTRL.RUN`` register write and both DMA transfers started; the
send transfer flushes the buffer from the CPU cache, as pynq's does), **wait** (polling
both channels until idle — busy-polled for 2 ms, then in 0.1 ms sleeps — and their
``wait()``, which invalidates the receive buffer), **registers** (STATUS and the four
counters read back) and **unpack** (result beats to int32 rows). The steps of a batch
are back to back, so they add up to its wall time; :meth:`RunResult.totals` also shows
the time ``run()`` spent outside the batches (buffer allocation, argument checks).
``start`` + ``wait`` is the end-to-end latency of a batch: from the register write
that starts it to its last result in host memory.

Every wait has a deadline that scales with the golden model's cycle bound for the
batch (:meth:`ZeroSkip.deadline`): a transfer that does not complete raises
:class:`DmaTimeout` after resetting the DMA and the engine, so the next call works, and
the reset itself is bounded — a DMA that does not come back raises instead of waiting
forever. Engine errors (STATUS / error beats) raise :class:`EngineError` with the
contract's explanation.

numpy only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import contract as C
from .backends.base import DMACR_RESET, DMACR_RS, MM2S_DMACR, S2MM_DMACR, STREAM_BYTES, Backend
from .errors import ConfigMismatch, DmaTimeout, EngineError, OverlayStuck, TransferTooLarge, ZeroSkipError
from .golden import parse_response
from .program import MODE_SITES, HwConfig
from .registers import Registers, Status

MAX_BATCH = 0xFFFF   # BATCH register
_SPIN_S = 0.002      # poll without sleeping this long, then back off
_POLL_SLEEP_S = 1e-4
RECOVER_S = 1.0      # deadline of the DMA reset and channel restart in recover()


@dataclass(frozen=True)
class ProgramInfo:
    """What the program header declares (docs/hardware.md, "Program packet" and
    "Sparse-pixel mode")."""

    lanes: int
    n_layers: int
    total_beats: int
    in_base: int
    in_bytes: int
    n_out: int
    slots: int
    channels: int
    act_log2: int
    input_mode: int = 0
    n_max: int = 0

    @classmethod
    def from_beats(cls, beats: np.ndarray) -> ProgramInfo:
        b = np.asarray(beats, np.uint64)
        if b.size < 4 or int(b[0]) & 0xFFFFFFFF != C.PROGRAM_MAGIC:
            raise ValueError("not a zeroskip program: the first beat lacks the magic 0x%08X (send program.bin "
                             "from a bundle)" % C.PROGRAM_MAGIC)
        h0, h1, h2, h3 = (int(x) for x in b[:4])
        return cls(lanes=(h0 >> 48) & 0xFF, n_layers=(h0 >> 56) & 0xFF, total_beats=h1 & 0xFFFFFFFF,
                   in_base=(h1 >> 32) & 0xFFFF, in_bytes=h2 & 0xFFFFFFFF, n_out=(h2 >> 32) & 0xFFFF,
                   slots=h3 & 0xFFFFFFFF, channels=(h3 >> 32) & 0xFFFF, act_log2=(h3 >> 48) & 0xFFFF,
                   input_mode=(h1 >> 48) & 0xFF, n_max=(h1 >> 56) & 0xFF)

    @property
    def in_beats(self) -> int:
        """Beats of one image (the largest one in pre-reduced sites mode)."""
        if self.input_mode == MODE_SITES:
            return 1 + self.n_max
        return -(-self.in_bytes // STREAM_BYTES)

    @property
    def out_beats(self) -> int:
        return -(-self.n_out // 2)


def check_fits(info: ProgramInfo, hw: HwConfig, manifest_hw: HwConfig | dict | None = None,
               sparse_pixels: bool = True) -> None:
    """Raise :class:`ConfigMismatch` unless a program (and the bundle manifest's hardware
    config, if given) fits the overlay ``hw``; ``sparse_pixels``: the overlay supports
    the sparse-pixel input modes."""
    if isinstance(manifest_hw, dict):
        manifest_hw = HwConfig.from_dict(manifest_hw)
    for have in dict.fromkeys([manifest_hw.lanes if manifest_hw is not None else info.lanes, info.lanes]):
        if have != hw.lanes:
            raise ConfigMismatch(f"bundle built for LANES={have}, overlay has LANES={hw.lanes}: "
                                 f"recompile with --lanes {hw.lanes}")
    if info.input_mode and not sparse_pixels:
        raise ConfigMismatch("the program uses sparse-pixel input (mode %d), the overlay was built without "
                             "sparse-pixel support: recompile the model without sparse-pixel layers or build the "
                             "overlay with them" % info.input_mode)
    short = [f"{what} {need} > {cap}" for what, need, cap in (
        ("weight slots", info.slots, hw.w_slots), ("channel records", info.channels, hw.ch_cap),
        ("outputs", info.n_out, hw.out_cap), ("layers", info.n_layers, hw.max_layers),
        ("activation bytes", 1 << info.act_log2, hw.act_bytes), ("sites", info.n_max, hw.site_cap))
        if need > cap]
    if short:
        raise ConfigMismatch(f"the program needs more than the overlay has ({'; '.join(short)}): prune more, "
                             "shrink the model, or build the overlay with larger capacities")


STEPS = ("pack", "copy", "start", "wait", "registers", "unpack")


def program_cycle_bound(beats: np.ndarray, hw: HwConfig) -> tuple[int, int]:
    """(cycles to load ``beats``, an upper bound of ``CYCLES − STALL`` per image) from the
    golden model's timing: the deadlines of LOAD and RUN scale with these. Sparse-pixel
    programs are bounded by their full grid (sites are a subset of it) plus a site-list
    allowance."""
    from .golden import image_timing
    from .program import decode_program

    load = int(np.asarray(beats).size) + hw.act_bytes // hw.lanes + 64
    try:
        prog = decode_program(np.asarray(beats, np.uint64), hw)
    except Exception:  # noqa: BLE001 - the engine will answer with the error code; bound generously
        return load, 1 << 20
    t = image_timing(prog)
    bound = int(t["total"])
    if prog.input_mode:  # data-dependent: every list at SITE_CAP, byte-wise input (mode 1)
        bound = 2 * bound + 8 * -(-prog.in_bytes // STREAM_BYTES) + 6 * prog.n_max
        bound += sum((sum(ch.n_groups for ch in lp.channels) + 1 + lp.desc.c_out) * hw.site_cap
                     for lp in prog.layers)
    return load, bound


@dataclass(frozen=True)
class RunResult:
    """Outputs of :meth:`ZeroSkip.run`.

    ``outputs``: int32 (N, n_out). Per batch: ``cycles`` (CYCLES − STALL, the engine's
    own time, independent of the DMA) and ``macs``; ``timings`` maps ``"images"``,
    the wall-clock seconds of each step (:data:`STEPS`), ``"cycles_total"`` (CYCLES)
    and ``"stall"`` to per-batch arrays. ``wall_s`` is the measured wall clock of the
    whole ``run()`` call.
    """

    outputs: np.ndarray
    cycles: np.ndarray
    macs: np.ndarray
    timings: dict
    clock_hz: float = 100e6
    wall_s: float = 0.0

    @property
    def total_cycles(self) -> int:
        return int(self.cycles.sum())

    @property
    def n_images(self) -> int:
        return int(len(self.outputs))

    @property
    def cycles_per_image(self) -> float:
        """Engine cycles (CYCLES − STALL) per image, averaged over the run."""
        return self.total_cycles / self.n_images

    @property
    def compute_latency_us(self) -> float:
        """The engine's own time per image at its clock (input stream, layers, results;
        no DMA set-up, no host work)."""
        return self.cycles_per_image / self.clock_hz * 1e6

    @property
    def batch_latency_s(self) -> np.ndarray:
        """Per batch, the measured end-to-end latency: from the register write that starts
        it to its last result in host memory (``start`` + ``wait``)."""
        return np.asarray(self.timings["start"], float) + np.asarray(self.timings["wait"], float)

    def totals(self) -> dict:
        """Seconds per step summed over batches; ``other``: the rest of the measured wall
        clock of ``run()`` (so the steps and ``other`` add up to ``wall``); the hardware
        time at the engine clock."""
        t = {k: float(np.sum(self.timings[k])) for k in STEPS}
        steps = sum(t.values())
        t["wall"] = max(self.wall_s, steps)
        t["other"] = t["wall"] - steps
        t["hardware"] = self.total_cycles / self.clock_hz
        return t

    def report(self) -> str:
        """Where the time went, per step (FINN-style throughput report)."""
        n = self.n_images
        t = self.totals()
        lat = self.batch_latency_s
        lines = [f"{n} images in {len(self.cycles)} batch(es): {n / t['wall']:.1f} images/s over the measured wall "
                 f"clock ({t['wall'] * 1e3:.3f} ms); engine {self.cycles_per_image:.0f} cycles per image = "
                 f"{self.compute_latency_us:.2f} us at {self.clock_hz / 1e6:g} MHz; end-to-end per batch "
                 f"(register write to results in memory) median {np.median(lat) * 1e3:.3f} ms"]
        for k in STEPS + ("other",):
            share = 100 * t[k] / t["wall"] if t["wall"] else 0.0
            lines.append(f"  {k:12s} {t[k] * 1e3:10.3f} ms  ({share:5.1f} %)")
        return "\n".join(lines)


class ZeroSkip:
    """Driver of one overlay over a :class:`~zeroskip.driver.backend.Backend`."""

    def __init__(self, backend: Backend, *, timeout: float | None = None):
        self.backend = backend
        self.regs = Registers(backend.ip)
        self.dma = backend.dma
        self.timeout = backend.default_timeout if timeout is None else float(timeout)
        ident, _ = self.regs.ident()
        if ident != C.ID_MAGIC:
            raise ZeroSkipError(
                f"no zeroskip engine answers at the IP's address (ID reads 0x{ident:08X}, expected "
                f"0x{C.ID_MAGIC:08X}): the .bit and .hwh do not match, or this is not a zeroskip overlay")
        self.hw = self.regs.config()
        self.program: ProgramInfo | None = None
        self._image_cycles_bound = 0
        self._bufs: dict = {}

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Free the DMA buffers and close the backend."""
        for buf in self._bufs.values():
            buf.freebuffer()
        self._bufs.clear()
        self.backend.close()

    def __enter__(self) -> ZeroSkip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ZeroSkip({self.backend!r}, {self.hw})"

    # -- commands -------------------------------------------------------------------
    def status(self) -> Status:
        return self.regs.status()

    def load_program(self, beats, *, manifest_hw: HwConfig | dict | None = None,
                     timeout: float | None = None) -> ProgramInfo:
        """Load a program (uint64 beats, or the bytes of ``program.bin``). Refuses a
        program that does not fit this overlay before any DMA."""
        if isinstance(beats, (bytes, bytearray, memoryview)):
            beats = np.frombuffer(bytes(beats), "<u8")
        beats = np.ascontiguousarray(beats, dtype=np.uint64).reshape(-1)
        info = ProgramInfo.from_beats(beats)
        check_fits(info, self.hw, manifest_hw, self.regs.sparse_pixels())
        self._check_len(beats.nbytes, "the program")
        self.program = None
        load_cycles, image_bound = program_cycle_bound(beats, self.hw)
        src = self._buffer("program", beats.size)
        ack = self._buffer("ack", 1)
        src[:beats.size] = beats
        self.regs.start_load()
        self._transfer(src, beats.nbytes, ack, STREAM_BYTES, "LOAD", self.deadline(load_cycles, timeout))
        magic, code, info_field = parse_response(int(ack[0]))
        st = self.regs.status()
        if st.error or code:
            raise EngineError(st.code or code, self.regs.error_info(), "LOAD")
        if magic != C.ACK_MAGIC or not st.program_valid:
            raise ZeroSkipError(f"LOAD answered 0x{int(ack[0]):016X} with {st}: expected an ACK beat "
                                "(0x%08X); the overlay and the software versions differ" % C.ACK_MAGIC)
        self.program = info
        self._image_cycles_bound = image_bound
        return info

    def deadline(self, cycles: int, timeout: float | None = None) -> float:
        """Seconds to wait for a command of at most ``cycles`` engine cycles: ``timeout``
        when given, else the backend's fixed margin (``default_timeout``, or the one given
        to the driver) plus the cycles at the slowest rate the backend advances the engine
        (``Backend.min_cycles_per_s``: a fraction of the clock on the board, the simulator's
        worst speed in simulation)."""
        if timeout is not None:
            return float(timeout)
        rate = float(getattr(self.backend, "min_cycles_per_s", 0) or self.backend.clock_hz)
        return self.timeout + cycles / rate

    def max_batch(self) -> int:
        """Largest batch whose input and result transfers fit the DMA length register."""
        p = self._need_program()
        limit = getattr(self.dma, "buffer_max_size", None)
        if limit is None:
            return MAX_BATCH
        per = max(p.in_beats, p.out_beats) * STREAM_BYTES
        return max(1, min(MAX_BATCH, limit // per))

    def run(self, packed, batch_size: int | None = None, *, timeout: float | None = None) -> RunResult:
        """Run images in batches of ``batch_size`` (default: the largest the DMA allows).

        ``packed`` is what ``zeroskip.driver.bundle.pack_inputs`` makes: uint8 (or int8)
        ``(N, in_bytes)`` for dense images (modes 0 and 1), or, for a program in
        pre-reduced sites mode, a sequence of N uint64 beat arrays (one per image)."""
        t_run = time.perf_counter()
        p = self._need_program()
        if p.input_mode == MODE_SITES:
            if isinstance(packed, np.ndarray) and packed.ndim != 1 and packed.dtype != object:
                raise ValueError("this program takes pre-reduced sites: pass one uint64 beat array per image "
                                 "(zeroskip.driver.bundle.pack_inputs)")
            images = [np.ascontiguousarray(a, dtype=np.uint64).reshape(-1) for a in packed]
            if any(a.size < 1 or a.size > 1 + p.n_max for a in images):
                raise ValueError(f"each image must be 1..{1 + p.n_max} beats (a count beat and up to n_max sites)")
            n = len(images)
        else:
            x = np.asarray(packed)
            if x.dtype == np.int8:
                x = x.view(np.uint8)
            if x.ndim != 2 or x.shape[1] != p.in_bytes or x.dtype != np.uint8:
                raise ValueError(f"packed images must be uint8 (N, {p.in_bytes}), got {x.dtype} {x.shape}")
            n = x.shape[0]
        if n == 0:
            raise ValueError("no images to run")
        b = min(n, self.max_batch()) if batch_size is None else int(batch_size)
        if not 1 <= b <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, got {b}")
        bounds = [(lo, min(lo + b, n)) for lo in range(0, n, b)]
        if p.input_mode == MODE_SITES:
            sizes = np.cumsum([0] + [a.size for a in images])
            in_beats = max(int(sizes[hi] - sizes[lo]) for lo, hi in bounds)

            def pack(lo, hi):
                return np.concatenate(images[lo:hi]).view(np.uint8)
        else:
            in_beats = (bounds[0][1] - bounds[0][0]) * p.in_beats
            ib = p.in_beats * STREAM_BYTES

            def pack(lo, hi):
                if ib == p.in_bytes:
                    return x[lo:hi].reshape(-1)
                img = np.zeros((hi - lo, ib), np.uint8)
                img[:, :p.in_bytes] = x[lo:hi]
                return img.reshape(-1)
        self._check_len(in_beats * STREAM_BYTES, f"a batch of {b} images", per_image=p.in_beats * STREAM_BYTES)
        self._check_len(b * p.out_beats * STREAM_BYTES, f"the results of {b} images",
                        per_image=p.out_beats * STREAM_BYTES)
        src = self._buffer("in", in_beats)
        dst = self._buffer("out", min(b, n) * p.out_beats)
        outputs = np.empty((n, p.n_out), np.int32)
        rows = [self._run_batch(pack, lo, hi, outputs[lo:hi], src, dst, timeout) for lo, hi in bounds]
        cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        macs = cols.pop("macs")
        cycles = cols.pop("cycles")
        return RunResult(outputs=outputs, cycles=cycles, macs=macs, timings=cols, clock_hz=self.backend.clock_hz,
                         wall_s=time.perf_counter() - t_run)

    def _run_batch(self, pack, lo: int, hi: int, out: np.ndarray, src, dst, timeout) -> dict:
        p = self.program
        k = hi - lo
        ob = p.out_beats * STREAM_BYTES
        what = f"RUN of {k} images"
        deadline = self.deadline(k * self._image_cycles_bound, timeout)
        t0 = time.perf_counter()
        data = pack(lo, hi)                                     # pack
        t1 = time.perf_counter()
        src.view(np.uint8)[:data.size] = data                   # copy
        t2 = time.perf_counter()
        self.regs.start_run(k)                                  # start (the send transfer flushes)
        self._start(src, data.size, dst, k * ob)
        t3 = time.perf_counter()
        self._wait(what, data.size, k * ob, deadline)           # wait
        t4 = time.perf_counter()
        st = self.regs.status()                                 # registers
        if st.error:
            raise EngineError(st.code, self.regs.error_info(), what)
        got = self.dma.recvchannel.transferred
        if got != k * ob:
            raise ZeroSkipError(f"{what} returned {got} bytes, expected {k * ob}, with {st}")
        cnt = self.regs.counters()
        t5 = time.perf_counter()
        out[:] = dst.view(np.int32)[:k * ob // 4].reshape(k, ob // 4)[:, :p.n_out]  # unpack
        t6 = time.perf_counter()
        return {"images": k, "pack": t1 - t0, "copy": t2 - t1, "start": t3 - t2, "wait": t4 - t3,
                "registers": t5 - t4, "unpack": t6 - t5,
                "cycles": cnt["CYCLES"] - cnt["STALL"], "cycles_total": cnt["CYCLES"], "stall": cnt["STALL"],
                "macs": cnt["MACS"]}

    # -- DMA ------------------------------------------------------------------------
    def _need_program(self) -> ProgramInfo:
        if self.program is None:
            raise ZeroSkipError("no program loaded: call load_program() with the bundle's program first")
        return self.program

    def _buffer(self, name: str, n_beats: int):
        """A cached DMA buffer of at least ``n_beats`` uint64 beats."""
        buf = self._bufs.get(name)
        if buf is None or buf.shape[0] < n_beats:
            if buf is not None:
                buf.freebuffer()
            buf = self.backend.allocate((max(1, n_beats),), np.uint64)
            buf[:] = 0
            self._bufs[name] = buf
        return buf

    def _check_len(self, nbytes: int, what: str, per_image: int | None = None) -> None:
        limit = getattr(self.dma, "buffer_max_size", None)
        if limit is None or nbytes <= limit:
            return
        fixes = [f"use batch_size <= {max(1, limit // per_image)}"] if per_image else []
        reason = getattr(self.dma, "limit_reason", None)
        if reason is None:
            bits = (limit + 1).bit_length() - 1
            reason = f"the DMA length register ({bits} bits) allows {limit} bytes per transfer"
            fixes.append("rebuild the overlay with a wider DMA buffer length register (c_sg_length_width, up to 26)")
        raise TransferTooLarge(f"{what} is {nbytes} bytes; {reason}: {', or '.join(fixes) or 'it cannot be sent'}")

    def _transfer(self, src, n_src: int, dst, n_dst: int, what: str, deadline_s: float) -> None:
        """Receive ``n_dst`` bytes into ``dst`` while sending ``n_src`` bytes of ``src``;
        wait for both, at most ``deadline_s`` seconds."""
        self._start(src, n_src, dst, n_dst)
        self._wait(what, n_src, n_dst, deadline_s)

    def _start(self, src, n_src: int, dst, n_dst: int) -> None:
        self.dma.recvchannel.transfer(dst, 0, n_dst)
        self.dma.sendchannel.transfer(src, 0, n_src)

    def _wait(self, what: str, n_src: int, n_dst: int, deadline_s: float) -> None:
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        t0 = time.monotonic()
        deadline = t0 + deadline_s
        pending = [("send", send), ("receive", recv)]
        spin_until = t0 + _SPIN_S
        while pending:
            pending = [(n, ch) for n, ch in pending if not ch.idle]
            if not pending:
                break
            failed = [n for n, ch in pending if ch.error]
            if failed:
                self.recover()
                raise ZeroSkipError(f"{what}: the DMA {' and '.join(failed)} channel stopped with an error "
                                    "(a zero-length transfer or an address outside the DMA's reach); "
                                    "the DMA and the engine were reset")
            now = time.monotonic()
            if now > deadline:
                raise self._timeout(what, [n for n, _ in pending], n_src, n_dst, deadline_s)
            if now > spin_until:
                time.sleep(_POLL_SLEEP_S)
        send.wait()
        recv.wait()

    def _timeout(self, what: str, pending: list, n_src: int, n_dst: int, t: float) -> DmaTimeout:
        st = self.regs.status()
        cnt = self.regs.counters()
        self.recover()
        limit = getattr(self.dma, "buffer_max_size", None)
        return DmaTimeout(
            f"{what}: the DMA {' and '.join(pending)} channel did not complete within {t:.3g} s "
            f"(sent {n_src} bytes, expecting {n_dst} back; engine {st}, CYCLES={cnt['CYCLES']}). Likely causes: "
            "(1) the result stream never ended with TLAST, so the receive channel waits forever; "
            f"(2) the transfer is longer than the DMA length register allows ({limit} bytes) and was cut short; "
            "(3) the .bit and .hwh do not match, so pynq drives the wrong addresses; "
            "(4) the deadline (a fixed margin plus the golden model's cycle bound for the command at the "
            "backend's slowest rate) is too short: pass timeout=. The DMA and the engine were reset; "
            "the loaded program is kept.")

    def recover(self, deadline_s: float = RECOVER_S) -> None:
        """Reset the DMA (both channels), restart both channels and soft-reset the engine;
        the loaded program stays valid. Bounded: a DMA whose reset does not finish, or a
        channel that does not leave the halted state, within ``deadline_s`` raises
        :class:`OverlayStuck` (reload the overlay) — pynq's own ``start()`` would wait
        for the channel forever, so it is only called once the channel runs."""
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        if hasattr(self.dma, "write") and hasattr(self.dma, "read"):
            deadline = time.monotonic() + deadline_s
            self.dma.write(MM2S_DMACR, DMACR_RESET)
            while self.dma.read(MM2S_DMACR) & DMACR_RESET:
                if time.monotonic() > deadline:
                    raise OverlayStuck(f"the AXI DMA did not finish its soft reset within {deadline_s:g} s")
            for off, name, ch in ((MM2S_DMACR, "send", send), (S2MM_DMACR, "receive", recv)):
                self.dma.write(off, DMACR_RS)
                while not ch.running:
                    if time.monotonic() > deadline:
                        raise OverlayStuck(f"the AXI DMA {name} channel stayed halted after its restart "
                                           f"(DMACR.RS written, DMASR.Halted still set after {deadline_s:g} s)")
                ch.start()      # returns at once: the channel runs; re-arms its first-transfer state
        else:
            for ch in (send, recv):
                ch.start()
        self.regs.soft_reset()
