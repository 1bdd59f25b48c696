"""edgefas on-device runtime: frames, capture sources, face preprocessing, live pipeline, CLI.

Nothing here imports torch; heavy optional libraries are imported inside the function that needs them.
"""

__version__ = "0.1.0"
