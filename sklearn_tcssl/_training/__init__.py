"""The skorch side of training: the net, callbacks, checkpoints, interrupts, Accelerate, seeding.

Layer: training (above ``nn/`` and ``_utils/``; no estimator imports it upwards).
"""
