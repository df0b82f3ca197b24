"""The recommendation service. BentoML reads ``BENTOML_HOME`` once, at its import, and several
modules here import it: point it at the platform's model store before any of them loads."""

from recsys.platform.settings import get_settings, use_bentoml_home

use_bentoml_home(get_settings())
