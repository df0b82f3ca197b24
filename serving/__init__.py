"""The recommendation service. BentoML reads ``BENTOML_HOME`` once, at its import, and several
modules here import it: point it at the platform's model store before any of them loads."""

from training.settings import get_settings, use_bentoml_home

use_bentoml_home(get_settings())
