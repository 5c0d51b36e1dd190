"""The fork server's quick exit: imported by it alone, as its last preload (_batches.py).

The fork server exits once the sweep process has gone. Tearing down the modules it preloaded
(torch) would take it most of a second more, and whatever reads the sweep's output through a
pipe (`| tee`, a subprocess) waits for that too, as the server holds the sweep's stdout and
stderr. Nothing of the server's needs tearing down: it only forks workers, and they exit
through `os._exit` as every child of a fork server does, so this handler never runs in them.
"""

import atexit
import os

atexit.register(os._exit, 0)  # registered last, so it runs first: no other handler runs
