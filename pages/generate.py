"""/generate on a fresh server's first visit, handed to the router; the page is pages/views/generate.py."""

from app_resources import hand_over_to_the_router

hand_over_to_the_router()
