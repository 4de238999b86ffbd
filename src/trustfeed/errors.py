"""The root of trustfeed's exceptions; each subpackage derives its own base from it."""


class TrustfeedError(Exception):
    """Base class for every error trustfeed raises on purpose."""
