"""trustfeed's HTTP service (FastAPI): one router per party, tokens, policy on every data route.

``create_app(platform)`` builds the app over an opened
:class:`trustfeed.service.Platform`; ``trustfeed serve`` runs it with uvicorn.
"""

from trustfeed.api._app import create_app

__all__ = ["create_app"]
