"""What the factory keeps and serves: finished builds, their integrity check, stored schematics
and the storage budget.
"""
