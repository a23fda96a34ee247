"""cocotb benches of the RTL, one folder per toplevel (``tb/<toplevel>/test_<bench>.py``,
each with its cocotb tests and the pytest runner that builds and runs them), shared pieces
in ``tb/common/`` (the build table :mod:`zeroskip.tb.common.builds` among them)."""
