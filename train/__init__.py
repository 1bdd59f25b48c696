"""Training side of edgefas: the disentanglement network, its losses, the training loop (DESIGN §4).

Everything below this package may import torch. Nothing of the runtime imports from here: only the
command line (``edge.cli``, the composition root) does, inside the commands that need it (train, eval,
export, and the bench's PyTorch eager row, whose opener it hands to ``edge.bench``).
"""
