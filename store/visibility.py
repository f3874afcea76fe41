"""Which devices a caller may see, as a SQL predicate every API query applies (BOLA guard).

Public devices are visible to everyone. A caller with ``read:all`` sees every device, or, when
its key is limited to some areas, the public ones plus those placed in those areas (the areas are
expanded to their whole subtrees before they get here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

AREA_SUBTREE: Final = """
WITH RECURSIVE sub AS (
    SELECT id FROM areas WHERE id = ANY(%(subtree_roots)s::text[])
    UNION
    SELECT a.id FROM areas AS a JOIN sub ON a.parent_id = sub.id
)
SELECT id FROM sub
"""
"""Ids of the areas in ``%(subtree_roots)s`` and every area below them."""


@dataclass(frozen=True, slots=True)
class Visibility:
    """The devices a caller may see.

    Attributes:
        everything: every device, public or not.
        area_ids: besides the public devices, those placed in these areas (already expanded to
            whole subtrees). Ignored when ``everything``.
    """

    everything: bool = False
    area_ids: tuple[str, ...] = ()

    def predicate(self, alias: str = "d") -> str:
        """SQL condition on the devices row ``alias``; bind :meth:`params` with it.

        The unrestricted case is the literal ``true`` rather than a bound flag, so a prepared
        statement's generic plan never has to carry an ``OR`` it cannot simplify.
        """
        if self.everything:
            return "true"
        if not self.area_ids:
            return f"{alias}.public"
        return f"({alias}.public OR {alias}.area_id = ANY(%(vis_areas)s::text[]))"

    def params(self) -> dict[str, Any]:
        """Parameters of :meth:`predicate`."""
        return {"vis_areas": list(self.area_ids)}

    def allows(self, *, public: bool, area_id: str | None) -> bool:
        """The same rule in Python, for rows already in memory (the live stream)."""
        return self.everything or public or (area_id is not None and area_id in self.area_ids)


PUBLIC_ONLY: Final = Visibility()
EVERYTHING: Final = Visibility(everything=True)
