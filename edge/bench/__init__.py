"""``edgefas bench``: where the time of one frame goes, for several models side by side.

machine (facts about the host), stages (per-stage statistics), ceiling (the host's fp32 matrix
product rate through ONNX Runtime), model_cost (MACs and parameters of an ONNX file), contestants
(the models or runners compared, on the full-frame or face-first pipeline), stream (the interleaved
frame loop), report (what is written), agreement (face first against full frame, frame by frame).
"""
