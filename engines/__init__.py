"""Model artifacts and how to run them: export, quantisation, TensorRT builds, manifests, runners (DESIGN §5).

Nothing here imports torch, tensorrt or pycuda at module level: the runtime on a Jetson loads only
the backend it runs.
"""
