"""Text generation: the task (inputs, timed generate), the step timer, its timed cell, and its quality
(perplexity/KL/continuations in scoring.py, zero-shot labels in zero_shot.py)."""
