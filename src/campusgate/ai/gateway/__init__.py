"""The AI gateway's request path: the ``builtin://ai`` backend and what it runs on.

:mod:`.runtime` holds one worker's providers, router and connection pools;
:mod:`.backend` answers the endpoints; :mod:`.attempts` walks a plan of targets with
fallbacks; :mod:`.chat` serves a chat call to the three chat APIs (Chat Completions,
Anthropic Messages, Responses); :mod:`.streams` re-encodes canonical chunks for each;
:mod:`.replies` writes answers and errors; :mod:`.body` reads request bodies;
:mod:`.access` decides which models a consumer may use.
"""
