"""Quality shared by every task: metrics (evaluate modules), group fairness (fairlearn) and the
variant scorer that compares each variant with its fp32 reference."""
