"""Training (:mod:`.train`) and global L1 pruning with ``torch.nn.utils.prune`` (:mod:`.prune`)."""
