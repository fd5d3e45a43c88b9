"""The work behind the nodes and the command line: no ComfyUI imports anywhere below this package.

Importing this package is cheap; torch, diffusers, transformers and av are imported by the modules that use them.
"""
