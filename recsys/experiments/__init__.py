"""Experiments as first-class objects: their definition, durable store, sticky assignment,
the analysis of impressions and outcomes, and the decisions taken from it."""
