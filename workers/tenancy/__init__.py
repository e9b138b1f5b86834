"""Who may do what: tokens and roles, namespace ownership, the audit log. Everything lives
in the configured store, so the embedded default and the scaled mode behave the same."""
