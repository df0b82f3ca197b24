"""Simulated users for experiments: people drawn from the synthetic world's ground truth who
ask the service for recommendations, examine lists with a position bias, click and buy from
their true preference, tire of poor lists, and post their events back with the ``rec_id``."""
