"""Listen, Attend and Spell (small) for the speech demo: listener, speller, search."""
from attention_np.apps.las.model import LASConfig, init_las, loss_and_grads
from attention_np.apps.las.search import transcribe_beam, transcribe_greedy

__all__ = ["LASConfig", "init_las", "loss_and_grads", "transcribe_greedy", "transcribe_beam"]
