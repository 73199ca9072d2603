"""Process settings for a long-running server (and the benchmark, which measures one).

After start-up, every module, model and URL pattern lives as long as the process. Python's
full garbage collections nonetheless walk all of them again and again: with an availability
read allocating tens of thousands of small tuples, a full pass landed inside a request every
few calls and added tens of milliseconds to it. ``gc.freeze()`` moves what exists at start-up
out of the collector's view (the use the Python documentation gives for it); garbage made
later is still collected as usual.
"""

from __future__ import annotations

import gc


def settle_after_startup() -> None:
    """Freeze the objects created during start-up so later collections skip them."""
    gc.collect()
    gc.freeze()
