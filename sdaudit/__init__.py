"""sdaudit: audit text-to-image models for demographic representation bias.

The package in layers, each importing only from those below it:

- ``cli``        the command-line face (``python -m sdaudit``); the Streamlit face is ``app/`` + ``pages/``
- ``present``    what people read: words and number formats, tables, charts, the Results view, the report
- ``generation`` the spec, models, the diffusers loop and the background jobs
  ``files``      files from outside or going out: safe reads/writes, run folders, sheets, reference
                 images, snapshots
  ``analysis``   labels from raters' answers, shares with intervals, comparisons, planning, agreement
- ``store``      the one door to the DuckDB file: schema, migrations, and each group of tables
- ground         ``scheme`` (labels, Monk Skin Tone, groups), ``config``, ``records``, ``errors``, ``roles``

Nothing here imports streamlit.
"""

__version__ = "0.1.0"
