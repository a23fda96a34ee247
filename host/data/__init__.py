"""Offline data sets: the synthetic 16×16 set and scikit-learn's digits (:mod:`.datasets`), synthetic detector images (:mod:`.detector`)."""
