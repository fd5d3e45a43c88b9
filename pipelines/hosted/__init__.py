"""Hosted LTX-2 providers behind one interface: fal.ai, WaveSpeedAI, vibedream, ByteCompute, Lightricks LTX API.

Importing this package is cheap; `requests` is imported by the modules that talk HTTP.
"""
