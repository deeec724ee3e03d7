"""``python -m attention_np.kernels.bench``: the benchmark (see the package docstring)."""
import os

from attention_np.kernels.bench import main, reexec_with_quiet_idle_threads

os.environ.setdefault("MPLBACKEND", "Agg")
reexec_with_quiet_idle_threads()
main()
