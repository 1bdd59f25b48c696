"""Training side of edgefas: the disentanglement network, its losses, the training loop (DESIGN §4).

Everything below this package may import torch; nothing in ``edge/`` imports from here.
"""
