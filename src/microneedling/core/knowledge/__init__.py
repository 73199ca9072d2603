"""The clinical knowledge pack: versioned TOML data validated at load, with sources and grades.

Use :func:`load_pack` to get the validated, cached :class:`Pack`.
"""

from microneedling.core.knowledge.loader import Pack, load_pack

__all__ = ["Pack", "load_pack"]
