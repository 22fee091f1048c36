"""The models: the per-ticker family (networks, baselines, anchors), their cards, registry and results."""
