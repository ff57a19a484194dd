"""Training: the loop (one process or torchrun), deterministic data order, checkpoints, lineage."""
