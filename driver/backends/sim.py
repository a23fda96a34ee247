"""The ``sim`` backend: pynq-shaped objects backed by a live simulation of the RTL.

:func:`open_sim` builds (or reuses the cached build of) ``sim_harness`` — ``zeroskip_top``
with a simulation-only AXI DMA model (``driver/sim/sim_dma.v``) on its streams — through
``zeroskip.driver.sim.build``, starts ``python -m zeroskip.driver.sim.server`` (which runs the
simulator with ``cocotb_tools.runner``) and talks to the cocotb test inside it over a
localhost socket (127.0.0.1 only). The driver then sees:

* :class:`SimIP` — ``read``/``write`` become AXI-Lite transactions (the server's master);
* :class:`SimDMA` — AXI DMA simple mode (:class:`~zeroskip.driver.backends.base.StreamChannel`):
  ``transfer`` loads the DMA model's beat memory in bulk and starts it; ``idle`` lets the
  simulation run until the channel's completion edge or a slice of cycles, so polling
  ``idle`` against a deadline (as on the board) is also how a missing TLAST turns into a
  timeout; the length register is ``len_bits`` wide like the real core's;
* ``allocate`` — host numpy buffers.

The request/reply protocol is :mod:`zeroskip.driver.sim.protocol`.

numpy only (the cocotb side needs the ``sim`` extra).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

from ..errors import SimError
from ..program import HwConfig
from ..sim.protocol import recv_msg, send_msg
from .base import DMACR_RESET, MAX_LEN_BITS, STREAM_BYTES, Backend, StreamChannel, StreamDMA, host_allocate

TOPLEVEL = "sim_harness"




# ------------------------------------------------------------------------------ process

class SimProcess:
    """The simulator child process and the socket to the cocotb test inside it."""

    def __init__(self, build_dir: str | os.PathLike, simulator: str = "verilator", *,
                 startup_timeout: float = 120.0, keep_dir: bool = False):
        self.simulator = simulator
        self.workdir = Path(tempfile.mkdtemp(prefix="zeroskip-sim-"))
        self._keep = keep_dir
        self.log_path = self.workdir / "sim.log"
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(0.2)
        port = lsock.getsockname()[1]
        from ..sim.build import simulator_env

        token = secrets.token_hex(16)       # the simulator proves it is ours when it connects
        env = dict(os.environ, **simulator_env(simulator), ZEROSKIP_SIM_TOKEN=token)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zeroskip.driver.sim.server", "--build-dir", str(build_dir),
                 "--simulator", simulator, "--toplevel", TOPLEVEL, "--port", str(port),
                 "--test-dir", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self._finalizer = weakref.finalize(self, _kill_group, self.proc)
        deadline = time.monotonic() + startup_timeout
        self.sock = None
        try:
            while self.sock is None:
                try:
                    conn, _ = lsock.accept()
                    conn.settimeout(30)
                    if recv_msg(conn)[0].get("token") == token:
                        self.sock = conn
                    else:
                        conn.close()
                except (OSError, EOFError, ValueError):
                    if self.proc.poll() is not None:
                        raise SimError(f"the simulator exited before connecting (code {self.proc.returncode})"
                                       f"{self.log_tail()}") from None
                    if time.monotonic() > deadline:
                        raise SimError(f"the simulator did not connect within {startup_timeout:g} s"
                                       f"{self.log_tail()}") from None
        except BaseException:
            lsock.close()
            self._keep = True                  # leave the log for the user
            self.close()
            raise
        lsock.close()
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests = 0

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return "\n--- simulator log (" + str(self.log_path) + ") ---\n" + "\n".join(lines) if lines else ""

    def request(self, op: str, blob: bytes = b"", **kw) -> tuple[dict, bytes]:
        if self.sock is None:
            raise SimError("the simulation is closed")
        try:
            send_msg(self.sock, {"op": op, **kw}, blob)
            rep, data = recv_msg(self.sock)
        except (OSError, EOFError) as e:
            self.sock = None
            raise SimError(f"lost the simulator during {op!r} ({e}){self.log_tail()}") from e
        self.requests += 1
        if not rep.get("ok"):
            raise SimError(f"simulator refused {op!r}: {rep.get('error')}")
        return rep, data

    def cycle(self) -> int:
        """Clock cycles simulated since reset (the harness's ``cycle`` counter)."""
        return int(self.request("hello")[0]["cycle"])

    def close(self) -> None:
        if self.sock is not None:
            try:
                send_msg(self.sock, {"op": "shutdown"})
                recv_msg(self.sock)
            except (OSError, EOFError):
                pass
            self.sock.close()
            self.sock = None
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._finalizer()
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass


# ------------------------------------------------------------------------------ pynq shapes

class SimIP:
    """The engine's AXI-Lite port in the simulation (``read``/``write`` like DefaultIP)."""

    def __init__(self, sim: SimProcess):
        self._sim = sim

    def read(self, offset: int = 0) -> int:
        return int(self._sim.request("read", addr=int(offset))[0]["value"])

    def write(self, offset: int, value: int) -> None:
        self._sim.request("write", addr=int(offset), value=int(value))


class _SimChannel(StreamChannel):
    """One channel of the simulated DMA; polling runs the simulation in slices of cycles
    sized to take about ``poll_s`` of wall time each."""

    def __init__(self, sim: SimProcess, tx: bool, max_size: int, poll_s: float):
        self._sim = sim
        self._chan = "mm2s" if tx else "s2mm"
        self._slice = 20000
        self._poll_s = poll_s
        super().__init__(tx=tx, max_size=max_size)

    def _begin(self, payload) -> None:
        if self.tx:
            self._sim.request("mm2s", payload)
        else:
            self._sim.request("s2mm", beats=-(-payload // STREAM_BYTES))

    def _poll(self) -> bool:
        t0 = time.perf_counter()
        rep, data = self._sim.request("wait", chan=self._chan, cycles=self._slice)
        dt = time.perf_counter() - t0
        if not rep["done"] and dt > 0:           # the whole slice ran: adapt it to poll_s
            self._slice = int(min(max(self._slice * self._poll_s / dt, 1000), 1 << 22))
        if rep["done"] and not self.tx:
            self._received = data
        return rep["done"]


class SimDMA(StreamDMA):
    """AXI DMA in simple mode over the simulated DMA model; a reset resets the HDL model."""

    def __init__(self, sim: SimProcess, len_bits: int, mem_bytes: int, poll_s: float = 0.05):
        mx = (1 << len_bits) - 1
        super().__init__(_SimChannel(sim, True, mx, poll_s), _SimChannel(sim, False, mx, poll_s), len_bits)
        self._sim = sim
        self.mem_bytes = mem_bytes
        if mem_bytes < self.buffer_max_size:   # one transfer must also fit the model's beat memory
            self.buffer_max_size = mem_bytes
            self.limit_reason = f"the simulated DMA's memory holds {mem_bytes} bytes per transfer"

    def write(self, offset: int, value: int) -> None:
        super().write(offset, value)
        if value & DMACR_RESET:
            self._sim.request("dma_reset")


# ------------------------------------------------------------------------------ open

def sim_process(backend: Backend) -> SimProcess:
    """The simulation behind a ``sim`` backend (for measurements: simulated cycles)."""
    if getattr(backend, "kind", None) != "sim" or not isinstance(backend.ip, SimIP):
        raise ValueError(f"not a sim backend: {backend!r}")
    return backend.ip._sim


def sim_params(hw: HwConfig, fault_inject: bool = False) -> dict:
    """Verilog parameters of ``sim_harness`` for an overlay configuration."""
    return {"LANES": hw.lanes, "ACT_BYTES": hw.act_bytes, "W_SLOTS": hw.w_slots, "CH_CAP": hw.ch_cap,
            "OUT_CAP": hw.out_cap, "MAX_LAYERS": hw.max_layers, "SITE_CAP": hw.site_cap,
            "FAULT_INJECT": int(bool(fault_inject))}


def build_sim(hw: HwConfig, simulator: str = "verilator", *, fault_inject: bool = False, quiet: bool = False) -> Path:
    """The (cached) build directory of ``sim_harness`` for ``hw``.

    Only the hardware configuration selects a build, never the model: a new program is
    data for the same simulation. A first build prints one line unless ``quiet``; the
    compiler output goes to ``build.log`` in the build directory, and its end is part of
    the :class:`SimError` when the build fails.
    """
    from ..sim import build as simbuild

    return Path(simbuild.build(TOPLEVEL, sim_params(hw, fault_inject), simulator, quiet=quiet))


# simulated engine cycles per wall second on a busy two-core machine, with margin
# (Verilator runs ~1.5 M/s idle, Icarus ~50x slower): the driver's deadlines scale with it
SIM_MIN_CYCLES_PER_S = {"verilator": 5e4, "icarus": 2e3}


def open_sim(hw: HwConfig | None = None, *, simulator: str = "verilator", fault_inject: bool = False,
             len_bits: int = MAX_LEN_BITS, build_dir: str | os.PathLike | None = None, quiet: bool = False,
             startup_timeout: float = 120.0, timeout: float = 10.0, keep_dir: bool = False) -> Backend:
    """A :class:`~zeroskip.driver.backend.Backend` over a live simulation of the RTL.

    ``build_dir`` reuses an existing build; otherwise :func:`build_sim` provides it.
    ``timeout`` is the fixed margin of the driver's wait deadlines in wall seconds (to
    which the driver adds the command's cycle bound at ``SIM_MIN_CYCLES_PER_S``).
    """
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"simulator must be 'verilator' or 'icarus', got {simulator!r}")
    hw = hw or HwConfig()
    if build_dir is None:
        build_dir = build_sim(hw, simulator, fault_inject=fault_inject, quiet=quiet)
    binary = Path(build_dir) / (TOPLEVEL if simulator == "verilator" else "sim.vvp")
    if not binary.is_file():
        raise SimError(f"{build_dir} holds no {simulator} build of {TOPLEVEL} ({binary.name} is missing)")
    sim = SimProcess(build_dir, simulator, startup_timeout=startup_timeout, keep_dir=keep_dir)
    try:
        hello, _ = sim.request("hello")
    except BaseException:
        sim.close()
        raise
    dma = SimDMA(sim, len_bits, hello["mem_beats"] * STREAM_BYTES)
    return Backend(kind="sim", ip=SimIP(sim), dma=dma, allocate=host_allocate, close=sim.close,
                   clock_hz=1e9 / hello["clock_ns"], default_timeout=timeout,
                   min_cycles_per_s=SIM_MIN_CYCLES_PER_S[simulator],
                   description=f"{simulator} simulation of zeroskip_top, {hw}, fault_inject={fault_inject}")
