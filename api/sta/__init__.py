"""OGC SensorThings API 1.1 (read) over dothi's data, mounted at ``/sta/v1.1``.

``router`` is the FastAPI router; docs/sensorthings.md describes the mapping, ids, options and
limits. Modules: :mod:`~api.sta.lexer`, :mod:`~api.sta.parser` and :mod:`~api.sta.ast` read
query options; :mod:`~api.sta.compile` turns them into parameterised SQL over the views of
:mod:`store.sta`; :mod:`~api.sta.entities` maps dothi's tables to entities;
:mod:`~api.sta.engine` answers a request; :mod:`~api.sta.serialize` renders JSON.
"""

from api.sta.routes import PREFIX, router

__all__ = ["PREFIX", "router"]
