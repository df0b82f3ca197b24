"""Request and response bodies of the HTTP API."""

from pydantic import BaseModel, ConfigDict, Field

from training.schema import Event


class RecommendRequest(BaseModel):
    """Body of ``POST /recommend``."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    num_items: int = Field(default=10, ge=1, le=100)


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    title: str | None = None
    categories: list[str] = []
    reason: str


class RecommendResponse(BaseModel):
    user_id: str
    items: list[RecommendedItem]
    model_version: str
    fallback: bool = Field(description="True when the items are the popularity fallback.")
    fallback_reason: str | None = None
    latency_ms: float


class EventsRequest(BaseModel):
    """Body of ``POST /events``: one event, or a batch under ``events``."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=1000)


class EventsResponse(BaseModel):
    accepted: int
    pushed_users: int
