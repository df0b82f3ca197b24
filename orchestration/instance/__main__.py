"""``python -m orchestration.instance``: prepare ``DAGSTER_HOME`` and print its path."""

from orchestration.instance import dagster_home

print(dagster_home())
