"""Sans-IO toxics and their registry.

A toxic type is a module with a :class:`Toxic` subclass registered by
:func:`register_toxic`. The embedded proxy never runs toxic code against sockets: it
feeds items and the time into stages and writes what comes out.

The interface
-------------

``Toxic`` (one per toxic on a proxy, immutable)
    ``type_name`` and ``attributes`` (a tuple of :class:`Attribute`: name, kind,
    default, minimum, unit). :meth:`Toxic.from_attributes` validates API input (keys
    case-insensitive, ``None`` ignored, merged over the current values on update) and
    raises :class:`ToxicConfigError` whose text is the API's 400 message; override
    :meth:`Toxic.check` for rules across attributes. :meth:`Toxic.to_json` lists every
    attribute. :meth:`Toxic.start` builds the per-link :class:`Stage`.

``Stage`` (per-link state, created when the link starts or its chain changes)
    ``feed(item, now)`` takes a :class:`Piece` (bytes plus their logical ``stamp``),
    an :class:`End` (``eof`` from the source, ``close`` or ``reset`` from a toxic) or a
    :class:`Reply`; it schedules outputs with ``emit(item, due)``. ``poll(now)`` returns
    what is due, ``deadline()`` when to poll next, ``drain()`` what it still holds when
    the toxic is removed or updated (the chain refeeds it to the new stages, so no byte
    is lost). ``start(link, now, previous)`` receives the stage this toxic had in the
    same link before the change, to carry state across updates (limit_data keeps its
    byte count). A stage emitting :class:`Reply` sends bytes back to the link's source
    (an HTTP toxic answering a request itself). ``on_remove()`` gives items to send
    when the toxic leaves the link (timeout closes a stream it punched holes in);
    ``finishing()`` returning true keeps the whole chain unchanged until it turns false
    (an HTTP stage still swallowing a duplicated response when its toxic is removed).
    Slicing stages derive from ``PacedStage`` (``_pacing``), which cuts lazily.

Class flags on ``Toxic``
    ``both_links``: the toxic needs both directions (HTTP toxics); the proxy starts a
    stage in both links whichever stream it was added on, and rolls toxicity once per
    connection. ``idle_effect``: the toxic acts on links that carry no data (timeout);
    changes to such toxics reach every open link at once. Other changes reach an idle
    link on its next read (nobody can tell), which keeps changes cheap with thousands
    of idle connections.

``LinkContext`` (what a stage sees)
    ``direction`` (``upstream``: client to server, ``downstream``: server to client),
    ``rng`` (seeded from the proxy manager), ``note(label, **data)`` to record an event,
    ``count(name, n)`` to add to the proxy's stats counters (``http_requests``,
    ``http_responses``), and ``connection``: a :class:`ConnectionContext` shared by the
    two links of one TCP connection, whose ``shared`` dict lets an upstream stage tell
    the downstream stage what to do (an ``http_duplicate`` toxic sends a request N times
    upstream and the downstream stage swallows the N-1 extra responses).

Toxicity is rolled per link by the proxy, not by toxics: on a miss the toxic gets no
stage in that link. Built-in types: latency, bandwidth, slow_close, timeout, reset_peer,
slicer, limit_data, noop.
"""

from __future__ import annotations

from pytest_chaos.toxics._base import (
    AnswerReader,
    Attribute,
    ConnectionContext,
    Deliver,
    End,
    Item,
    LinkContext,
    Piece,
    Reply,
    Stage,
    StreamWatch,
    Toxic,
    ToxicConfigError,
)
from pytest_chaos.toxics._chain import Chain
from pytest_chaos.toxics._registry import get_toxic_class, register_toxic, toxic_types

__all__ = [
    "AnswerReader",
    "Attribute",
    "Chain",
    "ConnectionContext",
    "Deliver",
    "End",
    "Item",
    "LinkContext",
    "Piece",
    "Reply",
    "Stage",
    "StreamWatch",
    "Toxic",
    "ToxicConfigError",
    "get_toxic_class",
    "register_toxic",
    "toxic_types",
]
