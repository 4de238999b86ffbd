"""Per-user settings (today: personalised feed or not, DSA Art. 38), keyed by digest."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from trustfeed.service import _tables as t


class UserSettings:
    """Durable settings with an in-memory cache (feeds read them on every request)."""

    def __init__(self, engine: sa.Engine, *, digest: Callable[[str], str]) -> None:
        self._engine = engine
        self._digest = digest
        t.metadata.create_all(engine, tables=[t.settings])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.settings)).all()
        self._personalised = {row.owner_digest: row.personalised for row in rows}

    def personalised(self, user_id: str) -> bool:
        """Personalised unless the user opted out."""
        return self._personalised.get(self._digest(user_id), True)

    def set(self, user_id: str, *, personalised: bool) -> None:
        owner = self._digest(user_id)
        with self._engine.begin() as conn:
            conn.execute(t.settings.delete().where(t.settings.c.owner_digest == owner))
            conn.execute(
                t.settings.insert().values(
                    owner_digest=owner, personalised=personalised, updated_at=time.time()
                )
            )
        self._personalised[owner] = personalised

    def forget(self, user_id: str) -> None:
        owner = self._digest(user_id)
        with self._engine.begin() as conn:
            conn.execute(t.settings.delete().where(t.settings.c.owner_digest == owner))
        self._personalised.pop(owner, None)
