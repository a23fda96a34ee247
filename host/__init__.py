"""zeroskip.host: train, prune, quantise, compile and export (needs torch for training)."""
