"""Listen, Attend and Spell (small) for the speech demo: listener, speller, search."""
from attention_np.apps.las.model import LASConfig, init_las, loss_and_grads
from attention_np.apps.las.search import beam_search, greedy_decode

__all__ = ["LASConfig", "init_las", "loss_and_grads", "greedy_decode", "beam_search"]
