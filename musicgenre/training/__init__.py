"""Fitting models honestly: metrics and result tables (``metrics``), the shallow study's nested CV under the
random, grouped and filtered protocols (``shallow_study``), CNN cross-validation (``cnn``), the pretrained
probe study (``probe``), musicnn's top fine-tuned on the same folds (``probe_top``) and DistilHuBERT
fine-tuning with the Trainer (``finetune``).

May import: ``models`` and everything below it."""
