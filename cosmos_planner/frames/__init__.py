"""Frames: camera messages and files in, timestamped ``Frame``/``Clip`` out.

``types`` (Frame, Clip), ``ingest`` (decode a camera message), ``encodings``, ``resize``
(the model's pixel budget), ``compressed`` (JPEG/PNG/compressedDepth), ``buffer`` (bounded
per camera, sampled at the model fps, newest wins), ``media`` (image and video files).
"""
