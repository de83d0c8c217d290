"""Tables: the paper's tables built from the metrics files of the evaluation and fine-tuning
stages (:mod:`.paper`, summarised over seeds by :mod:`.collect`, written by :mod:`.output`), the
data and report stages' tables (:mod:`.stages`) and the DVC metrics (:mod:`.dvc_metrics`)."""
