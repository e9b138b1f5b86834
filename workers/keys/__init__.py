"""Key material: the asset signing key, the SecureBoot key, EFI authenticated variables and the
per-deployment key check.
"""
