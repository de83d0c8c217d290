"""Figures of the paper from the evaluation outputs, the result tables and the training logs
(``medslip figure KIND``; names in :mod:`medslip.layout`, house style in
:mod:`medslip.figures.style`, one module per figure kind)."""
