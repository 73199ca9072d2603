"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

from microneedling.config.runtime import settle_after_startup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microneedling.config.settings")
application = get_wsgi_application()
settle_after_startup()
