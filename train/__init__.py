"""Training side of edgefas: the disentanglement network, its losses, the training loop (DESIGN §4).

Everything below this package may import torch. ``edge/`` imports from here only inside the functions
that need it (the CLI's train/eval commands, the bench's PyTorch eager row), never at module level.
"""
