"""The one error type users see: a message naming the file, the key and what was expected."""


class UserError(Exception):
    """A problem with the user's input (config, data file, flag); shown without a traceback."""
