"""Adaptation at test time: fitting the lifter to an unknown lens from unlabelled live 2D
(`iso.adapt_model`: lens, batch-norm, weights or lens+bn; `lens_fit`: the lens-space fit)."""
