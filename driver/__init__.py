"""zeroskip.driver: run bundles on the board, the simulated overlay or the golden model (numpy only)."""
