"""The build of one asset from its plan: orchestration, boot media, the layer cache, work
directories and the sandbox policy.
"""
