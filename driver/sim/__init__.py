"""The simulator runtime the ``sim`` backend uses: cached simulator builds of the RTL
(:mod:`.build`, shared with the cocotb testbenches in ``tb/``), the cocotb server that runs
inside the simulator (:mod:`.server`), their socket protocol (:mod:`.protocol`) and the
simulation harness (``sim_harness.v`` with the DMA model ``sim_dma.v``)."""
