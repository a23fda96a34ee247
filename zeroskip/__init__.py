"""zeroskip: sparse-aware int8 CNN inference overlay for PYNQ-Z2.

Subpackages: ``zeroskip.host`` (training, pruning, quantisation, compiler, CLI; needs
torch), ``zeroskip.driver`` (bundle loading, golden model, board/sim/model backends;
numpy only), ``zeroskip.rtl`` / ``zeroskip.tb`` (Verilog sources and cocotb benches,
shipped so an installed package can simulate).
"""

__version__ = "0.1.0"
