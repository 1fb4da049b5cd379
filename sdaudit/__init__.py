"""sdaudit: audit text-to-image models for demographic representation bias.

The package is layered (see DESIGN.md): ``scheme``/``config``/``demo`` at the bottom,
``store``/``generate`` above them, ``runfolder``/``sheets``/``jobs``/``snapshot`` above those, and the faces
(``cli``, ``streamlit_app.py`` with ``app/`` and ``pages/``) on top. Nothing here imports
streamlit.
"""

__version__ = "0.1.0"
