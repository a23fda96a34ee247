"""The board backend against pynq's own classes (pynq 3.x imports on a PC without a device).

``ZeroSkipIP`` is a ``DefaultIP`` bound to our VLNV and pynq's driver registry hands it
out. The driver then runs over pynq's real ``ZeroSkipIP``/``MMIO``, ``pynq.lib.dma.DMA``
(``_SDMAChannel``) and ``pynq.allocate``/``PynqBuffer`` on a stand-in pynq device whose
registers are the golden model's register file and an AXI DMA (simple mode) register
emulation, and whose memory is separate from the CPU's: data reaches the DMA only after
``flush()`` and the CPU only after ``invalidate()``, as on the board. The overlay loader's
file and design checks, and importing the driver without torch, are tested here too.
"""

import ctypes
import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pynq = pytest.importorskip("pynq")

from pynq.buffer import PynqBuffer  # noqa: E402
from pynq.overlay import DefaultIP, _assign_drivers, _ip_drivers  # noqa: E402
from zeroskip.driver import DmaTimeout, ZeroSkip  # noqa: E402
from zeroskip.driver import contract as C  # noqa: E402
from zeroskip.driver.backends.base import Backend  # noqa: E402
from zeroskip.driver.backends.board import OverlayError, ZeroSkipIP, find_bitfile, find_cores  # noqa: E402
from zeroskip.driver.backends.model import ModelOverlay  # noqa: E402
from zeroskip.driver.golden import GoldenEngine, predict_cycles  # noqa: E402

IP_BASE, DMA_BASE = 0x4000_0000, 0x4040_0000


@pytest.fixture()
def dma_class():
    """pynq's AXI DMA driver (pynq.lib also imports the MicroBlaze tools, which need pycparser < 3)."""
    return pytest.importorskip("pynq.lib.dma", reason="pynq.lib does not import here").DMA
DMA_VLNV = "xilinx.com:ip:axi_dma:7.1"


# --------------------------------------------------------------------------- driver binding

def test_zeroskip_ip_is_a_bound_default_ip():
    assert issubclass(ZeroSkipIP, DefaultIP)
    assert ZeroSkipIP.bindto == [C.VLNV]
    assert _ip_drivers[C.VLNV] is ZeroSkipIP
    assert _ip_drivers[C.VLNV.rpartition(":")[0]] is ZeroSkipIP


def test_pynq_assigns_our_driver_from_the_ip_dictionary(dma_class):
    desc = {"hierarchies": {}, "ip": {
        "zeroskip_0": {"type": C.VLNV, "fullpath": "zeroskip_0"},
        "axi_dma_0": {"type": DMA_VLNV, "fullpath": "axi_dma_0"},
    }}
    _assign_drivers(desc, ignore_version=False, device=None)
    assert desc["ip"]["zeroskip_0"]["driver"] is ZeroSkipIP
    assert desc["ip"]["axi_dma_0"]["driver"] is dma_class


# --------------------------------------------------------------------------- a stand-in device

class FakeDevice:
    """A pynq device (capability REGISTER_RW, as pynq's MMIO uses it) with the engine's
    register file at IP_BASE, an AXI DMA (simple mode) at DMA_BASE and device memory
    that CPU buffers reach through flush()/invalidate()."""

    def __init__(self, overlay: ModelOverlay):
        self.ov = overlay
        self.mem = {}                              # physical base -> bytearray (device side)
        self._addr = itertools.count(0x1000_0000, 0x10_0000)
        self.flushes = self.invalidates = 0
        self.dma = {0x00: 0, 0x30: 0}              # DMACR per channel
        self.ch = {0x00: self._idle_channel(), 0x30: self._idle_channel()}

    @staticmethod
    def _idle_channel():
        return {"busy": False, "idle": False, "addr": 0, "len": 0, "got": [], "done_len": 0}

    def has_capability(self, cap):
        return cap == "REGISTER_RW"

    # -- memory ---------------------------------------------------------------------
    def allocate(self, shape, dtype, **kwargs):
        base = next(self._addr)
        buf = PynqBuffer(shape, dtype, device=self, device_address=base, bo=base, coherent=False)
        self.mem[base] = bytearray(buf.nbytes)
        return buf

    def flush(self, bo, offset, ptr, size):
        self.flushes += 1
        self.mem[bo][offset:offset + size] = ctypes.string_at(ptr, size)

    def invalidate(self, bo, offset, ptr, size):
        self.invalidates += 1
        ctypes.memmove(ptr, bytes(self.mem[bo][offset:offset + size]), size)

    def _mem_at(self, phys):
        base = max(b for b in self.mem if b <= phys)
        return self.mem[base], phys - base

    # -- registers ------------------------------------------------------------------
    def read_registers(self, addr, length):
        if addr >= DMA_BASE:
            value = self._dma_read(addr - DMA_BASE)
        else:
            value = self.ov.read(addr - IP_BASE)
        return int(value).to_bytes(4, "little")

    def write_registers(self, addr, data):
        value = int.from_bytes(data, "little")
        if addr >= DMA_BASE:
            self._dma_write(addr - DMA_BASE, value)
        else:
            self.ov.write(addr - IP_BASE, value)

    def _dma_read(self, off):
        base = 0x30 if off >= 0x30 else 0x00
        reg, ch = off - base, self.ch[base]
        if reg == 0x00:
            return self.dma[base]
        if reg == 0x04:
            if base == 0x30 and ch["busy"]:
                self._s2mm_poll(ch)
            halted = 0 if self.dma[base] & 1 else 1
            return halted | (2 if ch["idle"] else 0)
        if reg == 0x28:
            return ch["done_len"]
        return 0

    def _dma_write(self, off, value):
        base = 0x30 if off >= 0x30 else 0x00
        reg, ch = off - base, self.ch[base]
        if reg == 0x00:
            if value & 4:                           # soft reset: both channels halted and idle
                self.dma = {0x00: 0, 0x30: 0}
                self.ch = {0x00: self._idle_channel(), 0x30: self._idle_channel()}
            else:
                self.dma[base] = value & 1
        elif reg == 0x18:
            ch["addr"] = value
        elif reg == 0x28:                           # LENGTH starts the transfer
            ch.update(busy=True, idle=False, len=value, got=[])
            if base == 0x00:                        # MM2S: the whole buffer as one packet
                mem, o = self._mem_at(ch["addr"])
                self.ov.stream_in(np.frombuffer(bytes(mem[o:o + value]), "<u8"))
                ch.update(busy=False, idle=True, done_len=value)

    def _s2mm_poll(self, ch):
        beats, last = self.ov.stream_out(ch["len"] // 8 - len(ch["got"]))
        ch["got"] += beats
        if last:
            data = np.array(ch["got"], "<u8").tobytes()
            mem, o = self._mem_at(ch["addr"])
            mem[o:o + len(data)] = data
            ch.update(busy=False, idle=True, done_len=len(data))


def pynq_backend(dma_class, overlay, timeout=2.0, dev=None, description="pynq classes on a stand-in device"):
    dev = dev or FakeDevice(overlay)
    ip = ZeroSkipIP({"phys_addr": IP_BASE, "addr_range": 0x1000, "device": dev, "interrupts": {}})
    dma = dma_class({
        "phys_addr": DMA_BASE, "addr_range": 0x1000, "device": dev, "interrupts": {}, "type": DMA_VLNV,
        "parameters": {"c_include_mm2s": "1", "c_include_s2mm": "1", "c_include_sg": "0", "c_micro_dma": "0",
                       "c_m_axi_mm2s_data_width": "64", "c_m_axi_s2mm_data_width": "64",
                       "c_sg_length_width": "26"}})
    be = Backend(kind="board", ip=ip, dma=dma, allocate=lambda shape, dtype: pynq.allocate(shape, dtype, target=dev),
                 default_timeout=timeout, description=description)
    return be, dev


@pytest.fixture()
def workload():
    from zeroskip.driver.bundle import pack_inputs
    from zeroskip.driver.program import HwConfig, encode_program
    from zeroskip.host.compiler.lowering import compile_model, input_layout
    from zeroskip.host.quant.randnet import random_input, random_qmodel

    rng = np.random.default_rng(11)
    model = random_qmodel(rng, input_shape=(1, 12, 12), n_conv=2, sparsity=0.6)
    prog = compile_model(model, HwConfig())
    beats = encode_program(prog)
    xp = pack_inputs(random_input(rng, model, 10), input_layout(model).to_dict())
    g = GoldenEngine()
    g.load(beats)
    return prog, beats, xp, g.run_images(xp)[0]


def test_driver_over_pynq_classes(dma_class, workload):
    prog, beats, xp, ref = workload
    be, dev = pynq_backend(dma_class, ModelOverlay())
    zs = ZeroSkip(be)
    assert isinstance(zs.backend.ip, ZeroSkipIP) and zs.hw.lanes == 8
    assert zs.regs.status().program_valid is False
    zs.load_program(beats)
    res = zs.run(xp, batch_size=4)
    np.testing.assert_array_equal(res.outputs, ref)
    assert list(res.cycles) == [predict_cycles(prog, 4), predict_cycles(prog, 4), predict_cycles(prog, 2)]
    assert dev.flushes >= 4 and dev.invalidates >= 4      # the data really went through flush/invalidate
    zs.close()


def test_timeout_over_pynq_dma_resets_and_recovers(dma_class, workload):
    _, beats, xp, ref = workload
    be, _ = pynq_backend(dma_class, ModelOverlay(fault_inject=True), timeout=0.3)
    zs = ZeroSkip(be)
    zs.load_program(beats)
    zs.regs.set_fault(True)
    with pytest.raises(DmaTimeout, match="receive channel did not complete within 0.3 s"):
        zs.run(xp[:2])
    zs.regs.set_fault(False)
    assert zs.dma.sendchannel.running and zs.dma.recvchannel.running
    np.testing.assert_array_equal(zs.run(xp).outputs, ref)


class StuckDevice(FakeDevice):
    """An AXI DMA that does not come back after a hang: its soft reset never finishes
    (``reset``), or the channels stay halted after DMACR.RS is written (``halted``)."""

    def __init__(self, overlay, mode):
        super().__init__(overlay)
        self.mode = mode
        self.stuck = False

    def _dma_read(self, off):
        if self.stuck and self.mode == "reset" and off in (0x00, 0x30):
            return self.dma[0x30 if off >= 0x30 else 0x00] | 4
        if self.stuck and self.mode == "halted" and off in (0x04, 0x34):
            return 1
        return super()._dma_read(off)

    def _dma_write(self, off, value):
        super()._dma_write(off, value)
        if value & 4:
            self.stuck = True


@pytest.mark.parametrize("mode,needle", [("reset", "did not finish its soft reset"),
                                         ("halted", "send channel stayed halted")])
def test_recover_never_hangs_on_a_stuck_dma(dma_class, workload, mode, needle):
    """A DMA that does not come back raises OverlayStuck within the recovery deadline;
    pynq's own channel start() would spin on it forever."""
    import threading

    from zeroskip.driver import OverlayStuck

    _, beats, xp, _ = workload
    dev = StuckDevice(ModelOverlay(fault_inject=True), mode)
    be, _ = pynq_backend(dma_class, None, timeout=0.2, dev=dev)
    zs = ZeroSkip(be)
    zs.load_program(beats)
    zs.regs.set_fault(True)
    caught = []

    def run():
        try:
            zs.run(xp[:2])
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            caught.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "recover() hung on a stuck DMA"
    assert len(caught) == 1 and isinstance(caught[0], OverlayStuck), caught
    assert needle in str(caught[0]) and "reload it" in str(caught[0])


# --------------------------------------------------------------------------- overlay files

def test_missing_bitstream_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROSKIP_OVERLAY", str(tmp_path))
    with pytest.raises(OverlayError, match="no overlay bitstream at .*zeroskip.bit.*ZEROSKIP_OVERLAY"):
        find_bitfile()


def test_bitstream_without_hwh_is_refused(tmp_path):
    (tmp_path / "zeroskip.bit").write_bytes(b"\0")
    with pytest.raises(OverlayError, match=r"zeroskip.hwh is missing next to .*zeroskip.bit"):
        find_bitfile(tmp_path)
    (tmp_path / "zeroskip.hwh").write_text("<xml/>")
    assert find_bitfile(tmp_path / "zeroskip.bit") == tmp_path / "zeroskip.bit"


def test_overlay_without_our_ip_or_dma_is_refused():
    with pytest.raises(OverlayError, match=f"has no {C.VLNV} IP .*axi_gpio_0"):
        find_cores({"axi_gpio_0": {"type": "xilinx.com:ip:axi_gpio:2.0"}})
    with pytest.raises(OverlayError, match="another version: zs .*zeroskip:0.9"):
        find_cores({"zs": {"type": C.VLNV.rpartition(":")[0] + ":0.9"}})
    with pytest.raises(OverlayError, match="no axi_dma"):
        find_cores({"zs": {"type": C.VLNV}})
    assert find_cores({"h/zs": {"type": C.VLNV}, "dma": {"type": DMA_VLNV}}) == ("h/zs", "dma")


def test_auto_picks_sim_off_the_board():
    from zeroskip.driver.backends import board_available

    assert not board_available()           # no /proc/device-tree/chosen/pynq_board here


# --------------------------------------------------------------------------- no torch on the board

def test_driver_imports_and_runs_without_torch(tmp_path):
    script = textwrap.dedent("""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is not installed on this board")
        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        import zeroskip.driver, zeroskip.driver.backends.board, zeroskip.driver.backends.sim
        from zeroskip.driver import ZeroSkip, open_backend
        from zeroskip.driver.bundle import pack_inputs
        from zeroskip.driver.golden import GoldenEngine
        from zeroskip.driver.program import encode_program
        from zeroskip.host.compiler.lowering import compile_model, input_layout
        from zeroskip.host.quant.randnet import random_input, random_qmodel
        from zeroskip.driver.program import HwConfig
        rng = np.random.default_rng(0)
        m = random_qmodel(rng)
        beats = encode_program(compile_model(m, HwConfig()))
        xp = pack_inputs(random_input(rng, m, 3), input_layout(m).to_dict())
        with ZeroSkip(open_backend("model")) as zs:
            zs.load_program(beats)
            out = zs.run(xp).outputs
        g = GoldenEngine(); g.load(beats)
        assert (out == g.run_images(xp)[0]).all()
        assert "torch" not in sys.modules
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


# --------------------------------------------------------------------------- robustness over pynq's classes

class CountingDevice(FakeDevice):
    """FakeDevice that counts DMA starts and can leave the send channel hanging (a
    stream that never takes the data)."""

    def __init__(self, overlay, hang_send=False):
        super().__init__(overlay)
        self.starts = 0
        self.hang_send = hang_send

    def _dma_write(self, off, value):
        base = 0x30 if off >= 0x30 else 0x00
        if off - base == 0x28:
            self.starts += 1
            if base == 0x00 and self.hang_send:
                self.ch[base].update(busy=True, idle=False, len=value, got=[])
                return
        super()._dma_write(off, value)


def counting_backend(dma_class, overlay, timeout=2.0, **kw):
    return pynq_backend(dma_class, overlay, timeout, dev=CountingDevice(overlay, **kw),
                        description="pynq classes on a counting device")


def test_send_channel_timeout_over_pynq_dma_resets_and_recovers(dma_class, workload):
    """The engine never takes the program (send channel stuck): DmaTimeout within the
    timeout naming the send channel, DMA and engine reset, then the overlay works."""
    import time

    _, beats, xp, ref = workload
    be, dev = counting_backend(dma_class, ModelOverlay(), timeout=0.3, hang_send=True)
    zs = ZeroSkip(be)
    t0 = time.monotonic()
    with pytest.raises(DmaTimeout, match=r"LOAD: the DMA send and receive channel did not complete within 0.3 s"):
        zs.load_program(beats)
    assert time.monotonic() - t0 < 2.0
    assert not zs.status().busy
    dev.hang_send = False
    zs.load_program(beats)
    np.testing.assert_array_equal(zs.run(xp).outputs, ref)


@pytest.fixture()
def lanes8_bundle(tmp_path):
    import npref
    from zeroskip.driver.program import HwConfig
    from zeroskip.host.compiler.export import export_bundle
    from zeroskip.host.quant.randnet import random_input, random_qmodel

    rng = np.random.default_rng(21)
    model = random_qmodel(rng, input_shape=(1, 8, 8), n_conv=2, sparsity=0.5)
    x = random_input(rng, model, 4)
    return export_bundle(tmp_path / "b", model, HwConfig(lanes=8), x, npref.forward(model, x))


@pytest.mark.parametrize("overlay_hw,needle", [
    ({"lanes": 16}, r"bundle built for LANES=8, overlay has LANES=16: recompile with --lanes 16"),
    ({"lanes": 4}, r"bundle built for LANES=8, overlay has LANES=4: recompile with --lanes 4"),
    ({"w_slots": 16, "ch_cap": 2}, r"weight slots \d+ > 16; channel records \d+ > 2.*build the overlay"),
    ({"out_cap": 1}, r"outputs \d+ > 1"),
])
def test_bundle_for_another_overlay_is_refused_before_dma(dma_class, lanes8_bundle, overlay_hw, needle):
    """run_bundle over pynq's classes: a bundle for another LANES or larger capacities is
    refused with the fix before a single DMA transfer starts."""
    from zeroskip.driver import ConfigMismatch
    from zeroskip.driver.bundle import load_bundle
    from zeroskip.driver.program import HwConfig
    from zeroskip.driver.runner import run_bundle

    be, dev = counting_backend(dma_class, ModelOverlay(HwConfig(**overlay_hw)))
    with pytest.raises(ConfigMismatch, match=needle):
        run_bundle(load_bundle(lanes8_bundle), backend_obj=be, quiet=True)
    assert dev.starts == 0 and dev.flushes == 0


def test_open_board_without_hwh_never_loads_the_bitstream(tmp_path, monkeypatch):
    """The public entry point refuses a .bit without its .hwh before pynq.Overlay is built."""
    from zeroskip.driver.backends.board import open_board

    (tmp_path / "zeroskip.bit").write_bytes(b"\0")

    def no_overlay(*a, **k):
        raise AssertionError("pynq.Overlay must not be created")

    monkeypatch.setattr(pynq, "Overlay", no_overlay)
    with pytest.raises(OverlayError, match="zeroskip.hwh is missing next to"):
        open_board(tmp_path / "zeroskip.bit")
    monkeypatch.setenv("ZEROSKIP_OVERLAY", str(tmp_path / "nowhere"))
    with pytest.raises(OverlayError, match="no overlay bitstream at .*nowhere"):
        open_board()


@pytest.mark.parametrize("ips,needle", [
    ({"axi_gpio_0": "xilinx.com:ip:axi_gpio:2.0", "axi_dma_0": DMA_VLNV}, "has no zeroskip.dev:overlay:zeroskip"),
    ({"zs_0": "zeroskip.dev:overlay:zeroskip:0.9", "axi_dma_0": DMA_VLNV}, "another version: zs_0"),
    ({"zs_0": None}, "no axi_dma"),
])
def test_open_board_on_an_overlay_without_our_ip(dma_class, tmp_path, monkeypatch, ips, needle):
    """open_board on a design whose IP dictionary (drivers assigned by pynq's own
    _assign_drivers) lacks our engine or the DMA: OverlayError naming what is there."""
    from zeroskip.driver.backends.board import open_board

    (tmp_path / "zeroskip.bit").write_bytes(b"\0")
    (tmp_path / "zeroskip.hwh").write_text("<xml/>")
    ip = {n: {"type": t or C.VLNV, "fullpath": n} for n, t in ips.items()}
    desc = {"hierarchies": {}, "ip": ip}
    _assign_drivers(desc, ignore_version=False, device=None)

    class FakeOverlay:
        def __init__(self, path, download=True):
            self.ip_dict = desc["ip"]

    monkeypatch.setattr(pynq, "Overlay", FakeOverlay)
    with pytest.raises(OverlayError, match=needle):
        open_board(tmp_path / "zeroskip.bit")
