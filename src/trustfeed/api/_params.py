"""Path parameters shared by the routers, bounded so that no id reaches a store it cannot fit.

An unbounded ``int`` let ``/v1/moderation/jobs/18446744073709551616/claim``
reach SQLite, whose integers are 64-bit: an OverflowError and a 500 instead of
a 422 saying what is wrong.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

#: A video's public id: the same bounds as in events and uploads.
ItemId = Annotated[int, Path(ge=0, lt=2**62, description="The video's public id.")]
#: A review job's or an appeal's id (a 64-bit row id).
RowId = Annotated[int, Path(ge=1, lt=2**63, description="A row id, as listed by the API.")]
