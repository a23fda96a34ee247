"""Shared pytest options: ``--fuzz`` enables the long fuzz runs (marked ``slow``)."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--fuzz", action="store_true", default=False,
                     help="run the long fuzz campaigns (>=500 stream cases, >=200 random networks)")


def pytest_configure(config):
    if config.getoption("--fuzz"):
        os.environ["ZEROSKIP_FUZZ"] = "1"


def pytest_collection_modifyitems(config, items):
    if config.getoption("--fuzz"):
        return
    skip = pytest.mark.skip(reason="long fuzz run: enable with --fuzz (make fuzz)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def fuzz_enabled() -> bool:
    return os.environ.get("ZEROSKIP_FUZZ") == "1"
