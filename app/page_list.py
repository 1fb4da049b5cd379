"""The app's pages, listed once: the router builds its navigation from this list, and the tests
open every address in it.

Streamlit 1.67 runs its older multipage mode while a folder named ``pages`` sits beside the main
script (app/router.py): until some script has called st.navigation, a deep link is matched against
that folder's files, and one missing there gets a "Page not found" dialog. So app/ holds no
``pages`` folder (tests/test_deep_links.py checks both), and every address, a fresh server's first
visit included, reaches the router's st.navigation. The page bodies live in the top-level pages/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BODIES = Path(__file__).resolve().parents[1] / "pages"


@dataclass(frozen=True)
class AppPage:
    """One page: its body in pages/, its name and icon in the sidebar, and its address."""

    file: str
    title: str
    icon: str
    url_path: str
    default: bool = False

    @property
    def body(self) -> Path:
        return BODIES / self.file

    @property
    def address(self) -> str:
        """Where a browser opens it: "/" for the default page (its public path is ""), else /url_path."""
        return "/" if self.default else f"/{self.url_path}"


# The default page is served at "/" and st.navigation matches a deep link only against each page's
# public path, which is "" for the default page: that is why the default is Home, and Generate keeps
# its own path, so /generate finds it.
PAGES = (
    AppPage("home.py", "Home", ":material/home:", "home", default=True),
    AppPage("generate.py", "Generate", ":material/add_photo_alternate:", "generate"),
    AppPage("annotate.py", "Annotate", ":material/label:", "annotate"),
    AppPage("results.py", "Results", ":material/bar_chart:", "results"),
    AppPage("agreement.py", "Agreement", ":material/groups:", "agreement"),
    AppPage("machine.py", "Automatic labels", ":material/smart_toy:", "automatic-labels"),
    AppPage("team.py", "Team", ":material/diversity_3:", "team"),
    AppPage("runs.py", "Runs", ":material/photo_library:", "runs"),
)
