"""Training and evaluation of the embedded model: its labelled sets and label schemes
(``labelled_sets``), the fine-tuning loop and selection (``trainer``), classification metrics
(``metrics``) and the model card (``card``).

Kept apart from ``tweet_signals.model`` so a worker that only runs the model never imports what
training needs; nothing in the pipeline's stages imports this package.
"""
