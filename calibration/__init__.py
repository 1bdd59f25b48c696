"""The operating point: PAD metrics, threshold selection, INT8 calibration data and calibrators (DESIGN §6)."""
