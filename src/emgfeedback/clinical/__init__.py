"""Clinical engine: regions and montage, calibration, exercise programs, detection, symmetry.

Everything here is sample-indexed and Qt-free: the live session and ``emgfeedback analyze`` use
the same objects.
"""
