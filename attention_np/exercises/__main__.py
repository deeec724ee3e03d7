"""``python -m attention_np.exercises list | start NAME | check NAME | check --all``"""
from attention_np.exercises.cli import main

raise SystemExit(main())
