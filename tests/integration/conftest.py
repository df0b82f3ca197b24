"""One real run of the whole platform on a small synthetic world, shared by the tests here."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from starlette.testclient import TestClient

from orchestration.run import main as run_platform
from recsys.events.event_log import EventLog
from recsys.platform.settings import Settings, get_settings
from serving.auth import KeyStore, Role

#: Rows that must be quarantined, each for a different reason.
BAD_ROWS = pd.DataFrame({
    "event_id": ["bad-type", "bad-rating", "bad-user"],
    "user_id": ["u1", "u1", " "],
    "item_id": ["i1", "i2", "i3"],
    "event_type": ["like", "rate", "view"],
    "value": [None, 9.0, None],
    "timestamp": pd.to_datetime(["2026-11-20T10:00:00Z"] * 3, utc=True),
    "context": ["{}"] * 3,
})


@dataclass(frozen=True)
class Platform:
    settings: Settings
    root: Path
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        """Credentials of an admin service key, as a client sends them."""
        return {"Authorization": f"Bearer {self.admin_key}"}


@pytest.fixture(scope="session")
def platform(platform_dirs: Path) -> Platform:
    """The platform after ``python -m orchestration.run`` on a 300-user world plus bad rows."""
    settings = get_settings()
    # The world ends at today's midnight; put the malformed rows inside its window.
    EventLog(settings.event_log_dir).append(
        BAD_ROWS.assign(timestamp=pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=3)),
        segment="bad-rows",
    )
    code = run_platform(["--source", "synthetic", "--users", "300", "--items", "200",
                         "--days", "30", "--seed", "7"])
    assert code == 0, "the platform job failed"
    _, admin_key = KeyStore(settings.data_dir / "auth" / "keys.json").create(Role.ADMIN, "tests")
    return Platform(settings=settings, root=platform_dirs, admin_key=admin_key)


@pytest.fixture(scope="session")
def service_client(platform: Platform) -> Iterator[TestClient]:
    """The service in process (BentoML's ASGI app), with an admin key: one per session, as
    BentoML registers its traffic metrics once per process."""
    from serving.service import RecommendationService

    with TestClient(RecommendationService.to_asgi(), headers=platform.headers) as client:
        yield client
