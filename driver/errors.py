"""Every error zeroskip raises on purpose has one root, :class:`ZeroSkipError`, so a user
(or the CLI) can catch them all; each names the thing that is wrong and what to do.

numpy-free, no imports: the board, the host and the simulator share it.

::

    ZeroSkipError (RuntimeError)
    ├── ConfigMismatch (ValueError)   program/bundle built for another overlay configuration
    ├── TransferTooLarge (ValueError) a transfer longer than the DMA length register allows
    ├── DmaTimeout (TimeoutError)     a DMA transfer did not complete by its deadline
    ├── OverlayStuck                  the DMA did not come back from a reset: reload the overlay
    ├── EngineError                   the engine answered with an error code
    ├── OverlayError                  overlay files or loaded design not usable
    ├── SimError                      the simulation could not be built, started or used
    │   └── BuildError                the simulator could not build a toplevel
    ├── BundleError (ValueError)      a bundle on disk that cannot be used
    ├── ProgramError (ValueError)     a program stream the engine refuses
    ├── CompileError (ValueError)     a model the compiler cannot map onto the engine
    │   └── UnsupportedModel          an op or structure the overlay cannot run (import)
    └── SynthError                    Yosys/FuseSoC synthesis failed
"""

from __future__ import annotations


class ZeroSkipError(RuntimeError):
    """Root of zeroskip's errors."""


class ConfigMismatch(ZeroSkipError, ValueError):
    """The program or bundle was built for another overlay configuration."""


class TransferTooLarge(ZeroSkipError, ValueError):
    """A transfer exceeds the DMA length register; refused before any DMA starts."""


class DmaTimeout(ZeroSkipError, TimeoutError):
    """A DMA transfer did not complete within the deadline (the overlay was reset)."""


class OverlayStuck(ZeroSkipError):
    """The DMA did not come back from a reset: the overlay must be reloaded."""

    def __init__(self, what: str):
        super().__init__(f"{what}: the overlay is stuck; reload it (Overlay('zeroskip.bit') / "
                         "open_backend('board')) or power-cycle the board")


class EngineError(ZeroSkipError):
    """The engine reported an error code; ``code``, ``name`` and ``beat`` (ERR_INFO)."""

    def __init__(self, code: int, beat: int, what: str):
        from . import contract as C

        self.code = int(code)
        self.name = C.ERRORS.get(self.code, "UNKNOWN")
        self.beat = int(beat)
        super().__init__(f"{what} failed at stream beat {beat}: {C.error_text(self.code)}")


class OverlayError(ZeroSkipError):
    """The overlay files or the loaded design are not what the driver needs."""


class SimError(ZeroSkipError):
    """The simulation could not be built or started, died, or refused a request."""


class BuildError(SimError):
    """The simulator could not build a toplevel; the message carries the build log's error
    lines and its end."""


class BundleError(ZeroSkipError, ValueError):
    """A bundle that cannot be used; the message names the file and the fix."""


class ProgramError(ZeroSkipError, ValueError):
    """A program the engine refuses. ``code`` is the contract error code, ``beat`` the
    index of the beat at which the engine detects it."""

    def __init__(self, code: int, beat: int, detail: str):
        from . import contract as C

        self.code = int(code)
        self.beat = int(beat)
        self.detail = detail
        super().__init__(f"{C.error_text(code)} [beat {beat}: {detail}]")


class CompileError(ZeroSkipError, ValueError):
    """The model does not fit or cannot be expressed on the engine; the message names the
    layer and the limit."""


class UnsupportedModel(CompileError):
    """A model the overlay cannot run: the message names the node, its op, the reason and
    what is supported."""


class SynthError(ZeroSkipError):
    """Yosys (through FuseSoC) failed or produced no statistics."""
