"""Evaluation: IFEval offline (official metrics), the project's own set, paired bootstrap comparisons."""
