"""The recommendation service. BentoML reads ``BENTOML_HOME`` once, at its import, and several
modules here import it: point it at the platform's model store before any of them loads.
Native thread pools are sized here too, before numpy loads (:mod:`serving.native_threads`)."""

from recsys.platform.settings import get_settings, use_bentoml_home
from serving.native_threads import size_native_threads

size_native_threads()
use_bentoml_home(get_settings())
