"""What to build: asset paths to profiles, plans (everything that shapes the bytes) and kernel
command lines.
"""
