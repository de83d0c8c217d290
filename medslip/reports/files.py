"""Output names of the report stage, shared by the code and the workflow rules (this module
imports nothing but the standard library, so the Snakefile can read it without medslip's
dependencies installed). What each file holds: :mod:`medslip.reports.outputs`."""

OUTPUT_FILES = (
    "triplets.parquet",
    "label_matrix.npy",
    "uncertain_mask.npy",
    "report_ids.txt",
    "labels_chestxray14.parquet",
    "labels_chexpert.parquet",
    "skipped.csv",
    "counts.json",
)
"""Every file of a report-stage output directory (one chunk, or the gathered chunks)."""
