"""The exercises, one module per part of the learning path; :data:`EXERCISES` in order."""
from attention_np.exercises.tasks import (core, flash_rollout, masks_heads, mha_norm, scores,
                                          sdpa, soft_hard)

EXERCISES = (core.EXERCISES + scores.EXERCISES + soft_hard.EXERCISES + masks_heads.MASKS
             + sdpa.EXERCISES + masks_heads.HEADS + mha_norm.EXERCISES + flash_rollout.EXERCISES)
