"""/agreement on a fresh server's first visit, handed to the router; the page is pages/agreement.py."""

from app import hand_over_to_the_router

hand_over_to_the_router()
