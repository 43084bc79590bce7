"""Label Studio's own settings with one fix, loaded inside the server's venv (never by the toolkit).

Label Studio 1.23's LOGGING gives the `django` logger a console handler *and* lets it propagate to the root
logger's console handler, so every request line reached server.log twice. `annotate/server.py` points
DJANGO_SETTINGS_MODULE here (this folder on the server's PYTHONPATH); everything else is Label Studio's.
"""

# base first: label_studio.py reads django.conf.settings while it is imported (Sentry setup), which re-enters
# this module; the base names must already be here then, as they are in Label Studio's own module.
from label_studio.core.settings.base import *  # noqa: F401,F403
from label_studio.core.settings.label_studio import *  # noqa: F401,F403  (the whole settings module, as is)
from label_studio.core.settings.label_studio import LOGGING

LOGGING["loggers"]["django"]["propagate"] = False
