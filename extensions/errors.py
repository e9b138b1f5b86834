"""The one error the extension library raises: a message naming what is wrong and where."""


class ExtensionError(ValueError):
    """An extension or overlay (or one of its entries) is malformed or not allowed.

    `str(error)` is fit to show a user: it names the offending entry or field.
    """
