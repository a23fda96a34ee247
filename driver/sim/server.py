"""The cocotb side of the sim backend: serves register and DMA requests on live RTL.

The driver process (:mod:`zeroskip.driver.backends.sim`) listens on a localhost port and
starts ``python -m zeroskip.driver.sim.server``, which runs the simulator through
``cocotb_tools.runner`` on a cached build of ``sim_harness`` (``zeroskip_top`` with the
simulation-only DMA of ``sim_dma.v``). The cocotb test :func:`serve` connects back and
answers requests one at a time (protocol in :mod:`zeroskip.driver.sim.protocol`).

Simulated time advances only while a request needs it: a register access takes the
AXI-Lite handshake cycles (:class:`AxiLiteMaster`), a ``wait`` runs until the DMA
channel's completion edge or a cycle budget, whichever comes first. Between requests
the simulator sits still. The DMA model's memories are handed over in bulk as
``$readmemh``/``$writememh`` files, and the clock is the HDL's own when the build defines
``ZS_SIM_HDL_CLOCK`` (Verilator builds of ``sim_harness``), so while the engine computes,
no Python code runs and no VPI callback is pending but the one on the awaited edge.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import numpy as np

CLOCK_NS = 10          # 100 MHz, the PYNQ-Z2 fabric clock (sim_harness's HDL clock uses the same)
RESET_CYCLES = 4
MM2S_FILE = "zs_mm2s.hex"   # as in sim_dma.v, relative to the simulator's working directory
S2MM_FILE = "zs_s2mm.hex"


def write_hex(path: Path, blob: bytes) -> int:
    """Little-endian bytes (zero-padded to whole beats) → one 64-bit word per line for
    $readmemh; returns the number of beats."""
    blob += bytes(-len(blob) % 8)
    words = np.frombuffer(blob, "<u8").astype(">u8")
    hexed = np.frombuffer(words.tobytes().hex().encode(), "S16")
    path.write_bytes(b"\n".join(hexed) + b"\n")
    return int(words.size)


def read_hex(path: Path) -> bytes:
    """A $writememh file of 64-bit words → little-endian bytes."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    words = "".join(ln.rjust(16, "0") for ln in lines if ln and not ln.startswith(("//", "@")))
    return np.frombuffer(bytes.fromhex(words), ">u8").astype("<u8").tobytes()


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, Timer
except ImportError:  # the launcher half below works without cocotb's simulator side
    cocotb = None


class AxiLiteMaster:
    """A minimal AXI4-Lite master for one transaction at a time.

    Every cycle it drives the channels at the falling clock edge and samples them in the
    read-only phase of that time step (values settled, as the next rising edge sees
    them), so it behaves the same whether the clock comes from cocotb or from the HDL.
    No coroutine or VPI callback outlives a transaction, which keeps long DMA waits free
    of Python; cocotbext-axi's master keeps monitors on the response channels instead.
    Call it right after a falling clock edge.
    """

    def __init__(self, dut, prefix: str, clk):
        self.clk = clk
        sig = lambda name: getattr(dut, f"{prefix}_{name}")
        self.awaddr, self.awprot, self.awvalid, self.awready = (sig(n) for n in ("awaddr", "awprot", "awvalid",
                                                                                  "awready"))
        self.wdata, self.wstrb, self.wvalid, self.wready = (sig(n) for n in ("wdata", "wstrb", "wvalid", "wready"))
        self.bresp, self.bvalid, self.bready = sig("bresp"), sig("bvalid"), sig("bready")
        self.araddr, self.arprot, self.arvalid, self.arready = (sig(n) for n in ("araddr", "arprot", "arvalid",
                                                                                  "arready"))
        self.rdata, self.rresp, self.rvalid, self.rready = (sig(n) for n in ("rdata", "rresp", "rvalid", "rready"))
        for h in (self.awvalid, self.wvalid, self.bready, self.arvalid, self.rready, self.awprot, self.arprot):
            h.value = 0
        self.max_cycles = 1000

    async def write(self, addr: int, data: int) -> int:
        """Write one 32-bit word (all byte lanes); returns BRESP."""
        self.awaddr.value, self.awvalid.value = addr, 1
        self.wdata.value, self.wstrb.value, self.wvalid.value = data & 0xFFFFFFFF, 0xF, 1
        self.bready.value = 1
        aw = w = True
        for _ in range(self.max_cycles):
            await ReadOnly()
            aw_hs = aw and bool(self.awready.value)
            w_hs = w and bool(self.wready.value)
            b_hs = not (aw or w) and bool(self.bvalid.value)
            resp = int(self.bresp.value) if b_hs else 0
            await FallingEdge(self.clk)   # the rising edge in between took the handshakes
            if aw_hs:
                aw = False
                self.awvalid.value = 0
            if w_hs:
                w = False
                self.wvalid.value = 0
            if b_hs:
                self.bready.value = 0
                return resp
        raise TimeoutError(f"AXI-Lite write to 0x{addr:x} not complete after {self.max_cycles} cycles")

    async def read(self, addr: int) -> tuple[int, int]:
        """Read one 32-bit word; returns (RDATA, RRESP)."""
        self.araddr.value, self.arvalid.value = addr, 1
        self.rready.value = 1
        ar = True
        for _ in range(self.max_cycles):
            await ReadOnly()
            ar_hs = ar and bool(self.arready.value)
            r_hs = not ar and bool(self.rvalid.value)
            if r_hs:
                data, resp = int(self.rdata.value), int(self.rresp.value)
            await FallingEdge(self.clk)
            if ar_hs:
                ar = False
                self.arvalid.value = 0
            if r_hs:
                self.rready.value = 0
                return data, resp
        raise TimeoutError(f"AXI-Lite read of 0x{addr:x} not complete after {self.max_cycles} cycles")


class _Server:
    """Request handlers; each runs between two clock edges or advances time itself."""

    def __init__(self, dut, sock: socket.socket):
        from zeroskip.driver.sim.protocol import recv_msg, send_msg

        self.dut = dut
        self.sock = sock
        self.recv_msg, self.send_msg = recv_msg, send_msg
        self.clk = dut.clk
        for name in ("dma_rst", "mm2s_req", "s2mm_req", "mm2s_beats", "s2mm_cap"):
            getattr(dut, name).value = 0
        dut.rst.value = 1
        self.axil = AxiLiteMaster(dut, "s_axi_ctrl", dut.clk)
        self.mem_beats = 1 << len(dut.mm2s_beats) - 1
        self.cwd = Path.cwd()
        self.req = {"mm2s": 0, "s2mm": 0}
        self.done = {"mm2s": dut.mm2s_done, "s2mm": dut.s2mm_done}

    async def reset(self) -> None:
        for _ in range(RESET_CYCLES):
            await RisingEdge(self.clk)
        self.dut.rst.value = 0
        await FallingEdge(self.clk)

    def cycle(self) -> int:
        return int(self.dut.cycle.value)

    # -- requests -----------------------------------------------------------------
    async def op_hello(self, req, blob):
        return {"mem_beats": self.mem_beats, "clock_ns": CLOCK_NS, "cycle": self.cycle(),
                "simulator": cocotb.SIM_NAME}, b""

    async def op_read(self, req, blob):
        value, resp = await self.axil.read(int(req["addr"]))
        if resp:
            raise RuntimeError(f"AXI-Lite read of 0x{int(req['addr']):x} answered RRESP={resp}")
        return {"value": value}, b""

    async def op_write(self, req, blob):
        resp = await self.axil.write(int(req["addr"]), int(req["value"]))
        if resp:
            raise RuntimeError(f"AXI-Lite write to 0x{int(req['addr']):x} answered BRESP={resp}")
        return {}, b""

    async def _start(self, chan: str, length_sig, beats: int) -> None:
        length_sig.value = beats
        self.req[chan] ^= 1
        getattr(self.dut, f"{chan}_req").value = self.req[chan]
        await RisingEdge(self.clk)      # the DMA takes the request on this or the previous edge
        await FallingEdge(self.clk)     # its done flag is cleared from here on

    async def op_mm2s(self, req, blob):
        beats = -(-len(blob) // 8)
        if not 0 < beats <= self.mem_beats:
            raise ValueError(f"MM2S of {beats} beats: the simulated DMA memory holds 1..{self.mem_beats}")
        beats = write_hex(self.cwd / MM2S_FILE, blob)
        await self._start("mm2s", self.dut.mm2s_beats, beats)
        return {"cycle": self.cycle()}, b""

    async def op_s2mm(self, req, blob):
        beats = int(req["beats"])
        if not 0 < beats <= self.mem_beats:
            raise ValueError(f"S2MM of {beats} beats: the simulated DMA memory holds 1..{self.mem_beats}")
        await self._start("s2mm", self.dut.s2mm_cap, beats)
        return {"cycle": self.cycle()}, b""

    async def op_wait(self, req, blob):
        """Run until the channel completes or ``cycles`` cycles pass."""
        chan = req["chan"]
        done = self.done[chan]
        if not int(done.value):
            await First(RisingEdge(done), Timer(int(req["cycles"]) * CLOCK_NS, "ns"))
            await FallingEdge(self.clk)
        rep = {"done": bool(int(done.value)), "cycle": self.cycle()}
        data = b""
        if rep["done"] and chan == "s2mm":
            data = read_hex(self.cwd / S2MM_FILE)
        return rep, data

    async def op_dma_reset(self, req, blob):
        self.dut.dma_rst.value = 1
        await RisingEdge(self.clk)
        await RisingEdge(self.clk)
        self.dut.dma_rst.value = 0
        await FallingEdge(self.clk)
        return {}, b""

    async def op_step(self, req, blob):
        await Timer(int(req["cycles"]) * CLOCK_NS, "ns")
        await FallingEdge(self.clk)
        return {"cycle": self.cycle()}, b""

    async def serve(self) -> None:
        while True:
            try:
                req, blob = self.recv_msg(self.sock)     # blocks: simulated time stands still
            except (ConnectionError, EOFError):
                return
            op = req.get("op")
            if op == "shutdown":
                self.send_msg(self.sock, {"ok": True})
                return
            handler = getattr(self, f"op_{op}", None)
            try:
                if handler is None:
                    raise ValueError(f"unknown request {op!r}")
                rep, data = await handler(req, blob)
                rep["ok"] = True
            except Exception as e:  # noqa: BLE001 - reported to the driver, the server keeps going
                rep, data = {"ok": False, "error": f"{type(e).__name__}: {e}"}, b""
            self.send_msg(self.sock, rep, data)


if cocotb is not None:
    @cocotb.test()
    async def serve(dut):
        """Serve the driver until it sends ``shutdown`` or disconnects."""
        port = int(os.environ["ZEROSKIP_SIM_PORT"])
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        from zeroskip.driver.sim.protocol import send_msg

        send_msg(sock, {"token": os.environ.get("ZEROSKIP_SIM_TOKEN", "")})
        try:
            srv = _Server(dut, sock)
            await Timer(1, "step")              # let constant assignments settle
            if str(dut.hdl_clock.value) != "1":  # else sim_harness runs its own clock (ZS_SIM_HDL_CLOCK)
                Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
            await srv.reset()
            await srv.serve()
        finally:
            sock.close()


# ------------------------------------------------------------------------------ launcher

def main(argv: list[str] | None = None) -> int:
    """Start the simulator on a prebuilt ``sim_harness`` and serve the driver on ``--port``."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--toplevel", default="sim_harness")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--test-dir", required=True)
    args = ap.parse_args(argv)
    from cocotb_tools.runner import get_runner

    runner = get_runner(args.simulator)
    test_dir = Path(args.test_dir)
    runner.test(test_module="zeroskip.driver.sim.server", hdl_toplevel=args.toplevel, hdl_toplevel_lang="verilog",
                build_dir=args.build_dir, test_dir=test_dir, results_xml=str(test_dir / "results.xml"),
                extra_env={"ZEROSKIP_SIM_PORT": str(args.port), "COCOTB_REDUCED_LOG_FMT": "1"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
