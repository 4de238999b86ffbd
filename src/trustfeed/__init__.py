"""trustfeed: short-video recommendation under a trusted-custodian arrangement.

Subpackages follow ``ARCHITECTURE.md``: ``data`` (interaction schema, loaders,
splits, the synthetic world), ``evaluation`` (ranking metrics), ``recommend``
(the licensed algorithm) and ``bench`` (side-by-side comparisons with peers).
"""

__version__ = "0.1.0"
