"""The universe-wide (pooled) model: its data, network, numpy forward pass, card and learners."""
