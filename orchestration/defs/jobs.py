"""Jobs: the whole pipeline, ingestion alone, and retraining from validated events."""


import dagster as dg

from orchestration.defs.assets import ingestion

#: Runs of the jobs that train carry this tag; the production instance's run queue
#: (orchestration/instance/dagster-postgres.yaml) runs at most one of them at a time.
TRAINING_TAGS = {"recsys/job": "training"}

#: Ingest → features → train → evaluate → promote → package, over a range of event days.
platform_job = dg.define_asset_job(
    "platform_job",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(ingestion.event_source)
    - dg.AssetSelection.groups("experiments"),
    description="Events of the selected days to a promoted, packaged champion.",
    tags=TRAINING_TAGS,
)

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.assets(ingestion.raw_events, ingestion.validated_events),
    description="Materialize and validate the event log's days.",
)

import_job = dg.define_asset_job(
    "import_job",
    selection=dg.AssetSelection.assets(ingestion.event_source),
    description="Import a source (synthetic world, MovieLens, events file) into the event log.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.groups("features", "training", "evaluation", "deployment"),
    description="Rebuild features from validated events, retrain, evaluate, promote, package.",
    tags=TRAINING_TAGS,
)

ALL_JOBS = [platform_job, ingestion_job, import_job, retrain_job]
