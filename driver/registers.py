"""Register-level operations of the engine over anything with ``read``/``write``.

:class:`Registers` is used by the driver on every backend and mixed into the board's
``ZeroSkipIP`` (:mod:`zeroskip.driver.backends.board`). numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import contract as C
from .program import HwConfig

R = C.REG


@dataclass(frozen=True)
class Status:
    """Decoded ``STATUS`` register."""

    raw: int

    @property
    def busy(self) -> bool:
        return bool(self.raw & C.STATUS["BUSY"])

    @property
    def done(self) -> bool:
        return bool(self.raw & C.STATUS["DONE"])

    @property
    def error(self) -> bool:
        return bool(self.raw & C.STATUS["ERROR"])

    @property
    def program_valid(self) -> bool:
        return bool(self.raw & C.STATUS["PROGRAM_VALID"])

    @property
    def code(self) -> int:
        return (self.raw >> 8) & 0xFF

    @property
    def state(self) -> int:
        return (self.raw >> 16) & 0xF

    def __str__(self) -> str:
        flags = [n for n in ("busy", "done", "error", "program_valid") if getattr(self, n)]
        return (f"STATUS=0x{self.raw:08X} ({', '.join(flags) or 'idle'}, code {C.ERRORS.get(self.code, self.code)}, "
                f"state {self.state})")


class Registers:
    """Register-level operations of the engine (docs/hardware.md, "Register map").

    Mixed into :class:`ZeroSkipIP`; wraps any other object with ``read``/``write``
    when built as ``Registers(ip)``.
    """

    def __init__(self, ip=None):
        if ip is not None:
            self.read = ip.read
            self.write = ip.write

    def ident(self) -> tuple[int, int]:
        """(ID, VERSION) registers."""
        return int(self.read(R["ID"])), int(self.read(R["VERSION"]))

    def status(self) -> Status:
        """The decoded STATUS register."""
        return Status(int(self.read(R["STATUS"])))

    def error(self) -> int:
        """Error code of the last command (0: none)."""
        return self.status().code

    def error_info(self) -> int:
        """Index of the stream beat at which the last error was detected (ERR_INFO)."""
        return int(self.read(R["ERR_INFO"]))

    def config(self) -> HwConfig:
        """The overlay's build parameters from CONFIG0..3 (LANES, activation memory,
        weight slots, channel records, outputs, layers, site-list entries): every capacity
        the compiler relies on, so a bundle that needs more is refused before any DMA.
        An overlay of RTL version 1 has no CONFIG3 (it reads 0): its MAX_LAYERS and
        SITE_CAP are the contract defaults (SITE_CAP 0 when CONFIG0[16] is clear)."""
        c0 = int(self.read(R["CONFIG0"]))
        c1 = int(self.read(R["CONFIG1"]))
        c2 = int(self.read(R["CONFIG2"]))
        c3 = int(self.read(R["CONFIG3"]))
        if c3:
            max_layers, site_cap = c3 & 0xFF, (c3 >> 8) & 0xFF
        else:
            max_layers = HwConfig().max_layers
            site_cap = HwConfig().site_cap if (c0 >> 16) & 1 else 0
        return HwConfig(lanes=c0 & 0xFF, act_bytes=1 << ((c0 >> 8) & 0xFF), w_slots=c1,
                        ch_cap=c2 & 0xFFFF, out_cap=(c2 >> 16) & 0xFFFF, max_layers=max_layers,
                        site_cap=site_cap)

    def sparse_pixels(self) -> bool:
        """True when the overlay supports the sparse-pixel input modes."""
        return bool(int(self.read(R["CONFIG0"])) >> 16 & 1)

    def fault_injection(self) -> bool:
        """True when the overlay was built with the test-only FAULT register."""
        return bool(int(self.read(R["CONFIG0"])) >> 17 & 1)

    def start_load(self) -> None:
        """Arm a program load: the next input packet is the program."""
        self.write(R["CTRL"], C.CTRL["LOAD"])

    def start_run(self, batch: int) -> None:
        """Arm inference of ``batch`` images: the next input packet holds them."""
        if not 1 <= batch <= 0xFFFF:
            raise ValueError(f"batch must be 1..65535 images, got {batch}")
        self.write(R["BATCH"], int(batch))
        self.write(R["CTRL"], C.CTRL["RUN"])

    def soft_reset(self) -> None:
        """Return the engine to idle, dropping a command in progress (a loaded program stays)."""
        self.write(R["CTRL"], C.CTRL["SOFT_RESET"])

    def counters(self) -> dict:
        """CYCLES, STALL, COMPUTE and MACS of the last command."""
        return {k: int(self.read(R[k])) for k in ("CYCLES", "STALL", "COMPUTE", "MACS")}

    def set_fault(self, suppress_tlast: bool) -> None:
        """Test only (FAULT_INJECT builds): suppress TLAST on result streams."""
        self.write(R["FAULT"], int(bool(suppress_tlast)))
