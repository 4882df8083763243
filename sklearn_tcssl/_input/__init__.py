"""The input layer: X in any accepted form -> validated, standardised sequences or lazy volumes.

Layer: input (above ``nn/`` and ``_utils/``): adapters, sequence numerics, volume runs,
file checks.
"""
