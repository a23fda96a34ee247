"""Benchmarks: engine figures per layer and LANES (:mod:`.figures`), simulator throughput (:mod:`.sim`), Yosys resources (:mod:`.resources`)."""
