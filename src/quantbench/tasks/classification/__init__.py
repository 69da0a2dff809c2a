"""Text classification: the task (model class, inputs, timed call), its timed cell, its quality."""
