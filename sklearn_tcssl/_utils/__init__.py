"""Small shared utilities: exceptions, shared parameter docs, the configuration and thread policy.

Layer: the ground (imports nothing else from the package).
"""
