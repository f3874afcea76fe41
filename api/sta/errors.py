"""The typed errors of the SensorThings service.

Every way a request can be wrong (a query option that does not parse, a path that names no
entity, a property that cannot be filtered) raises one of these; the routes turn them into
``application/problem+json`` responses. Nothing else escapes as a 500.
"""

from __future__ import annotations


class StaQueryError(Exception):
    """A query option or resource path that cannot be understood (HTTP 400).

    Attributes:
        option: where the problem is: ``$filter``, ``$orderby``, ``path`` …
        message: what is wrong, in a sentence.
        position: 0-based character offset in that option's text, when known.
        token: the offending text, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        option: str = "",
        position: int | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(message)
        self.option = option
        self.message = message
        self.position = position
        self.token = token

    def located(self, option: str) -> StaQueryError:
        """The same error, attributed to ``option`` if it has no option yet."""
        if not self.option:
            self.option = option
        return self

    def describe(self) -> str:
        """One line naming the option, the offending token and its position."""
        where = []
        if self.token is not None:
            where.append(f"at {self.token!r}")
        if self.position is not None:
            where.append(f"position {self.position}")
        suffix = f" ({', '.join(where)})" if where else ""
        prefix = f"{self.option}: " if self.option else ""
        return f"{prefix}{self.message}{suffix}"


class StaNotFound(Exception):  # noqa: N818 (an answer, like api.problems.ApiProblem)
    """The path names an entity, property or relation that does not exist (HTTP 404).

    Attributes:
        what: the entity set or property.
        ident: the id or name asked for.
        device: the device behind the missing entity, when there is one: the route checks
            whether it exists but is hidden from the caller, for the audit log.
    """

    def __init__(self, what: str, ident: str, *, device: str | None = None) -> None:
        super().__init__(f"{what} {ident!r} does not exist")
        self.what = what
        self.ident = ident
        self.device = device
