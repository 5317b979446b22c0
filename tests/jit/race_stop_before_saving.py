"""Half of a forced gufunc-cache race (numba #10128), run with NUMBA_CACHE_DIR set and without musicgenre.

Compiles one unrelated function first (so its per-process function counter, and with it the names it
gives librosa's kernels, differs from a fresh process's), then stops itself with SIGSTOP just before
saving the compiled ``_pi_wrapper`` kernel. The test lets another process compile and save the
kernel and its wrapper meanwhile, then resumes this one: it overwrites the kernel and keeps the
other's wrapper, which names a kernel that no longer exists.
"""

import os
import signal

import numba
from numba.core import caching


@numba.njit
def _shift_counter(x):
    return x + 1


_shift_counter(1)
_save = caching.Cache.save_overload


def _stop_before_kernel(self, sig, data):
    if type(self).__name__ == "FunctionCache" and self._py_func.__name__ == "_pi_wrapper":
        os.kill(os.getpid(), signal.SIGSTOP)
    return _save(self, sig, data)


caching.Cache.save_overload = _stop_before_kernel
import librosa.core.pitch  # noqa: E402,F401 - compiles and saves its gufuncs
