"""The interaction (authorize → sign-in → consent → complete) as a state machine over injected ports.

``machine``: states, events and the transition table (data); ``authentication``: sign-in methods as data and
the assurance they reach; ``assurance``: what a request needs; ``record``: the stored interaction;
``limits``: sign-in attempt limits; ``lifecycle``: each transition's effect.
"""

from . import methods as methods  # registers the TOTP and passkey sign-in methods
