"""Results: the paper's tables built from the metrics files of the evaluation stage."""
