"""Shared pytest options for both test trees (``tests/`` and the cocotb benches' runners
in ``tb/``): ``--fuzz`` enables the long fuzz runs (marked ``slow``).

Tests are also marked by what they need, so the edit-run loop can leave the slow kinds
out (``make test-fast`` = ``-m "not rtl and not eda"``): ``rtl`` (simulates the RTL),
``eda`` (FuseSoC / Yosys / the Vivado stand-in), ``ml`` (trains or imports PyTorch
models). Whole files of ``tests/`` get theirs here; the benches in ``tb/`` and single
tests elsewhere carry ``rtl`` themselves."""

import os

import pytest
from zeroskip.tb.common.builds import fuzz_enabled  # noqa: F401  (tests import it from here)


def pytest_addoption(parser):
    parser.addoption("--fuzz", action="store_true", default=False,
                     help="run the long fuzz campaigns (>=500 stream cases, >=200 random networks)")


def pytest_configure(config):
    if config.getoption("--fuzz"):
        os.environ["ZEROSKIP_FUZZ"] = "1"


FILE_MARKS = {
    "test_fusesoc.py": ("eda",), "test_driver_sim.py": ("rtl",),
    "test_host_ml.py": ("ml",), "test_golden_torch.py": ("ml",), "test_sparse_host.py": ("ml",),
    "test_ir.py": ("ml",), "test_board_install.py": ("eda",),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for mark in FILE_MARKS.get(item.path.name, ()):
            item.add_marker(getattr(pytest.mark, mark))
    if config.getoption("--fuzz"):
        return
    skip = pytest.mark.skip(reason="long fuzz run: enable with --fuzz (make fuzz)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
