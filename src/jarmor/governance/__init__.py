"""Governance: who may do what, for how long, and who decided — above the protocol core, below the adapters.

Modules: ``lifecycle`` (offboarding a client, revoking a grant, each recorded in the audit log),
``inventory`` (clients with their keys, grants and usage; the entitlement review).

Flow integrity records: ``records`` (the event model, canonical hashing, and why events), ``capture`` (protocol
evidence -> events, called by the server adapter), ``recorder`` (batched background writes), ``chain``
(verification), ``flows`` (one summary per transaction, the policy decision), ``query``, ``reports``,
``policy_check`` (dry-run of a proposed policy), ``charts`` and ``render`` (text, JSON, HTML with inline SVG).
"""
