"""The exercises, one module per part of the learning path; :data:`EXERCISES` in the site's
order (the order of :data:`attention_np.exercises.pages.PAGES`, then the order within a page
written here)."""
from attention_np.exercises.pages import ORDER
from attention_np.exercises.tasks import (beam, blocks, core, efficient, flash_rollout,
                                          graph_lm, masks_heads, mha, norm_ffn, positional,
                                          projects, scores, sdpa, soft_hard)

_WRITTEN = (
    [core.SOFTMAX_FORWARD, core.SOFTMAX_BACKWARD, soft_hard.SOFT]       # 3. soft attention
    + scores.EXERCISES                                                   # 4. score functions
    + [soft_hard.HARD]                                                   # 5. hard attention
    + [core.LINEAR_BACKWARD] + masks_heads.MASKS + sdpa.EXERCISES       # 6. self-attention
    + [soft_hard.DROPOUT]
    + positional.EXERCISES                                               # 7. positions
    + masks_heads.HEADS + mha.EXERCISES                                  # 8. multi-head
    + norm_ffn.EXERCISES + blocks.EXERCISES                              # 9. the block
    + [flash_rollout.ROLLOUT]                                            # 10. seeing attention
    + [flash_rollout.BAHDANAU] + beam.EXERCISES + projects.EXERCISES     # 11. projects
    + [flash_rollout.FLASH] + efficient.EXERCISES                        # 12. efficient
    + graph_lm.GRAPH + graph_lm.LM                                       # applications
)

EXERCISES = tuple(sorted(_WRITTEN, key=lambda ex: ORDER[ex.page]))
