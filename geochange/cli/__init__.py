"""The ``geochange`` command line (``main.py`` and a module per subcommand).

Torch's OpenMP threads spin 300,000 times at each barrier before they sleep. On a machine busy
with other work a spinning thread holds a core that a preempted one needs, and ``synth`` with
every core ran 2.4x slower than with one thread; at 1,000 spins (OpenMP's own value when it
knows the cores are oversubscribed) it ran as fast as one thread under load and as fast as
before on a quiet machine (``benchmarks/threads.py``). It is set here, before any command can
load torch; the arithmetic, and so every output, is the same. An explicit ``GOMP_SPINCOUNT``
or ``OMP_WAIT_POLICY`` wins.
"""

import os

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
