"""What every family's training shares: metrics and result tables (``metrics``). Each family's own training and
cross-validation live in its folder under ``musicgenre.families``; ``shallow_study``, ``cnn``, ``probe``,
``probe_top``, ``robust``, ``robust_views`` and ``finetune`` here are deprecated names for them, kept for one release.

May import: ``models`` and everything below it."""
