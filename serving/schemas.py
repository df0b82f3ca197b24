"""Request and response bodies of the HTTP API."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from recsys.events.schema import Context, Event, EventBatch

RecsType = Literal["personalized", "popular"]
MAX_CATEGORY_FILTERS = 20
CategoryName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RecommendFilters(BaseModel):
    """Business filters applied after ranking (an item must pass all of them)."""

    model_config = ConfigDict(extra="forbid")

    categories: list[CategoryName] | None = (
        Field(default=None, min_length=1, max_length=MAX_CATEGORY_FILTERS,
              description="Keep items in at least one of these categories."))
    max_price: float | None = Field(default=None, ge=0, description="Keep items up to this price.")


class RecommendRequest(BaseModel):
    """Body of ``POST /recommend``."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    num_items: int = Field(default=10, ge=1, le=100)
    context: Context = Field(
        default_factory=dict, description="Device, page, session, ...: `device`, `timestamp` "
        "(else the time of the request), `hour` and `weekday` (UTC) are ranked on."
    )
    filters: RecommendFilters | None = None
    diversity: float | None = Field(
        default=None, ge=0, le=1, description="MMR diversity weight (unset: service default)."
    )
    max_per_category: int | None = Field(
        default=None, ge=0, description="Cap per primary category (0: none)."
    )
    explain: bool = Field(
        default=False, description="Add the ranker's top feature contributions to each item."
    )


class FeatureContribution(BaseModel):
    """One ranker input's share of an item's score (LightGBM ``pred_contrib``)."""

    feature: str
    value: float | None = Field(description="The input's value (None: missing).")
    contribution: float = Field(description="Its SHAP contribution, in ranker-score units.")


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    title: str | None = None
    categories: list[str] = []
    price: float | None = None
    reason: str
    reason_kind: str = Field(
        default="popular", description="What the reason comes from: `seed_item` (the history "
        "item that drove its item-to-item score), `similar_item` (the history item closest in "
        "the model's space), `new_item` (a new item, by its metadata), `category` (the user's "
        "category affinity) or `popular`.")
    reason_item_id: str | None = Field(default=None, description="The item the reason names.")
    contributions: list[FeatureContribution] | None = Field(
        default=None, description="The ranker's top feature contributions (with `explain`).")


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model_version: str
    fallback: bool = Field(description="True when the items are the popularity fallback.")
    fallback_reason: str | None = None
    cached: bool = Field(default=False, description="True when served from the response cache.")
    experiment_id: str | None = None
    variant: str | None = Field(
        default=None, description="The experiment arm (MLflow model alias) that served it."
    )
    latency_ms: float
    rec_id: str | None = Field(
        default=None, description="Id of this served list (an impression): send it back with "
        "the events it leads to (`rec_id`, and the item's `position`).")


def _events_shape(body: Any) -> str:
    if isinstance(body, EventBatch) or (isinstance(body, dict) and "events" in body):
        return "batch"
    return "event"


EventsBody = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[Event, Tag("event")],
    Discriminator(_events_shape),
]
"""``POST /events`` body: a batch when it has ``events``, else one event; a 422 then names
the bad fields of that shape only, not of both."""


class EventsResponse(BaseModel):
    accepted: int
    pushed_users: int


class TrainResponse(BaseModel):
    run_id: str
    job: str


class ModelVersionInfo(BaseModel):
    """A registered version of the recommender in MLflow."""

    version: str
    aliases: list[str]
    status: str
    run_id: str | None
    created_at: str
    tags: dict[str, str]
    metrics: dict[str, float]
    serving: bool = Field(description="True when this service currently serves the version.")


class ModelsResponse(BaseModel):
    name: str
    serving_version: str
    versions: list[ModelVersionInfo]
