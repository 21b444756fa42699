"""Volumetric protocols, one module each; every module registers its protocols with
:func:`sambench.volumes.types.register_protocol` when imported, and
:func:`sambench.volumes.types.load_protocols` imports them all (modules starting with ``_`` are
skipped). Nothing is imported here."""
